"""Image-text matching (ITM / VLM): is this image described by this text?

A binary classifier (one FC layer, sigmoid) on the fusion encoder's output: the fused
[CLS] of a single-stream model, or the concatenation [CLS_T; CLS_V] of the two streams of a
dual-stream model. Negatives are made by swapping: each image is paired with another
sample's text and each text with another sample's image. ALBEF mines hard negatives from
the ITC similarities of the batch: image ``i`` gets text ``j`` with probability

    P(j | i) = exp(s_ij) / sum_{k not a positive of i} exp(s_ik)   (0 for positives of i),

the softmax of its similarity row restricted to non-positives, and symmetrically for texts.
The hardest negative (the most similar non-positive, as VSE++) is the deterministic
variant. Under torch.distributed the negatives come from every process's batch (the
caller gathers the similarities, see :meth:`vlkd.vlp.tasks.PretrainingStep.matching`).
Positives are the diagonal plus any pair the caller marks (the same image with several
captions, duplicate captions), so that a "negative" is never a true match.

The fusion encoder belongs to the model, so the sampling is a separate step:
:func:`sample_negatives` picks indices, :func:`matching_pairs` lays out the ``3N`` pairs to
fuse, and :class:`ImageTextMatchingLoss` scores the fused outputs.
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS


NEGATIVE_MODES = ('softmax', 'hardest', 'uniform')


def negative_mode(hard: Union[bool, str]) -> str:
    """The negative mining mode of a ``hard_negatives`` setting: True -> 'softmax' (ALBEF),
    False -> 'uniform', or one of :data:`NEGATIVE_MODES` by name."""
    if isinstance(hard, bool):
        return 'softmax' if hard else 'uniform'
    if hard not in NEGATIVE_MODES:
        raise ValueError(f'hard negatives must be True, False or one of {NEGATIVE_MODES}, '
                         f'got {hard!r}')
    return hard


def sample_negatives(similarity: Tensor, positive_mask: Optional[Tensor] = None,
                     hard: Union[bool, str] = True,
                     generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """A negative text for every image and a negative image for every text.

    Args:
        similarity: (N, N) image-to-text ITC logits (scaled similarities), row ``i`` image
            ``i``, column ``j`` text ``j``; pair ``i`` is (image i, text i). No gradient.
        positive_mask: (N, N) bool, True where image ``i`` and text ``j`` match; defaults to
            the diagonal (the diagonal is always positive).
        hard: True or 'softmax': sample with the softmax of the similarities (ALBEF);
            'hardest': the most similar non-positive; False or 'uniform': uniformly among
            the non-positives (plain swapping).
        generator: random generator on the device of ``similarity``.

    Returns:
        ``(negative_text, negative_image)``, both (N,) long: text index for image ``i``,
        image index for text ``j``.
    """
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError('similarity must be a square (N, N) image-to-text matrix, got '
                         f'{tuple(similarity.shape)}')
    n = len(similarity)
    eye = torch.eye(n, dtype=torch.bool, device=similarity.device)
    if positive_mask is None:
        positive_mask = eye
    elif positive_mask.shape != similarity.shape or positive_mask.dtype != torch.bool:
        raise ValueError(f'positive_mask must be a bool ({n}, {n}) matrix like similarity, '
                         f'got {positive_mask.dtype} {tuple(positive_mask.shape)}')
    positive_mask = positive_mask | eye
    for name, mask in (('image', positive_mask), ('text', positive_mask.T)):
        full = mask.all(dim=1)
        if full.any():
            raise ValueError(f'{name} {full.nonzero()[0].item()} matches every sample of the '
                             'batch: there is no negative to sample for it')
    mode = negative_mode(hard)
    scores = similarity.detach().float()
    if mode == 'uniform':
        scores = torch.zeros_like(scores)

    def draw(logits: Tensor, mask: Tensor) -> Tensor:
        logits = logits.masked_fill(mask, -torch.inf)
        if mode == 'hardest':
            return logits.argmax(dim=1)
        return torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)

    return draw(scores, positive_mask), draw(scores.T, positive_mask.T)


def matching_pairs(negative_text: Tensor, negative_image: Tensor,
                   rows: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``3N`` pairs to fuse: ``N`` positives (i, i), image ``i`` with its negative text,
    text ``j`` with its negative image.

    ``rows`` (N,): the indices of the ``N`` pairs themselves (default ``0..N-1``; under
    torch.distributed, this process's rows of the global batch that the negatives index).
    Returns ``(image_index, text_index, is_match)``, each (3N,): fuse
    ``images[image_index]`` with ``texts[text_index]``; ``is_match`` is 1 for the first
    ``N`` pairs, 0 for the others.
    """
    if negative_text.dim() != 1 or negative_text.shape != negative_image.shape:
        raise ValueError('negative_text and negative_image must both be (N,), got '
                         f'{tuple(negative_text.shape)} and {tuple(negative_image.shape)}')
    if rows is None:
        rows = torch.arange(len(negative_text), device=negative_text.device)
    elif rows.shape != negative_text.shape:
        raise ValueError(f'rows must be (N,) like the negatives, got {tuple(rows.shape)}')
    image_index = torch.cat([rows, rows, negative_image])
    text_index = torch.cat([rows, negative_text, rows])
    is_match = torch.cat([torch.ones_like(rows), torch.zeros_like(rows), torch.zeros_like(rows)])
    return image_index, text_index, is_match


@MODELS.register_module()
class ImageTextMatchingLoss(nn.Module):
    """Binary cross-entropy of a linear matching head on fused [CLS] features.

    Args:
        hidden_dim: width H of the fusion encoder's [CLS] output(s).
        dual_stream: the head reads [CLS_T; CLS_V] (2H) instead of one fused [CLS] (H).
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, dual_stream: bool = False, loss_weight: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.dual_stream = dual_stream
        self.loss_weight = loss_weight
        self.head = nn.Linear(2 * hidden_dim if dual_stream else hidden_dim, 1)

    def logits(self, fused_cls: Tensor, image_cls: Optional[Tensor] = None) -> Tensor:
        """Matching logits (M,); sigmoid gives the probability that a pair matches.

        ``fused_cls`` (M, H): the fused [CLS] (single stream) or the text stream's [CLS_T]
        (dual stream, with ``image_cls`` (M, H) the image stream's [CLS_V]).
        """
        expected = f'(M, {self.hidden_dim})'
        if fused_cls.dim() != 2 or fused_cls.shape[1] != self.hidden_dim:
            raise ValueError(f'fused_cls must be {expected}, got {tuple(fused_cls.shape)}')
        if self.dual_stream:
            if image_cls is None or image_cls.shape != fused_cls.shape:
                got = None if image_cls is None else tuple(image_cls.shape)
                raise ValueError(f'a dual-stream ITM head needs image_cls {expected} beside '
                                 f'the text [CLS] {tuple(fused_cls.shape)}, got {got}')
            fused_cls = torch.cat([fused_cls, image_cls], dim=1)
        elif image_cls is not None:
            raise ValueError('image_cls is for dual_stream=True; a single-stream ITM head '
                             'reads one fused [CLS]')
        return self.head(fused_cls).squeeze(1)

    def forward(self, fused_cls: Tensor, is_match: Tensor,
                image_cls: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``{'loss': mean BCE, 'accuracy': fraction of pairs classified right}`` of
        ``M`` fused pairs; ``is_match`` (M,) 1 for matching pairs, 0 otherwise."""
        logits = self.logits(fused_cls, image_cls)
        if is_match.shape != logits.shape:
            raise ValueError(f'is_match must be ({len(logits)},), one 0/1 per pair, got '
                             f'{tuple(is_match.shape)}')
        targets = is_match.to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        accuracy = ((logits > 0) == is_match.bool()).to(logits.dtype).mean()
        return dict(loss=self.loss_weight * loss, accuracy=accuracy.detach())
