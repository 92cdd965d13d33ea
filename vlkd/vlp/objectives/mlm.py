"""Masked language modelling (BERT; conditioned on the image in a VLP model).

:func:`mask_tokens` picks each maskable token (not padding, not a special token) with
probability ``mask_prob`` (15 %) and replaces a picked token by [MASK] with probability 0.8,
by a random non-special token with probability 0.1, and keeps it otherwise; the labels hold
the original ids of the picked tokens and ``-100`` elsewhere. The model encodes the masked
text (with the image), and :class:`MaskedLanguageModelingLoss` predicts the picked tokens
with BERT's prediction head (dense + GELU + LayerNorm, then a decoder onto the vocabulary,
optionally tied to the word embeddings):

    L = mean over picked positions p of -log softmax(head(h_p))[y_p].

ALBEF's momentum distillation mixes in the momentum model's token distribution ``q_p``:
``(1 - alpha) L + alpha * mean_p -sum_v q_pv log softmax(head(h_p))_v``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .heads import PredictionHead

IGNORE_INDEX = -100  # label of the positions that carry no target (torch's CE default)


def mask_tokens(input_ids: Tensor, mask_token_id: int, vocab_size: int,
                special_token_ids: Sequence[int] = (), attention_mask: Optional[Tensor] = None,
                mask_prob: float = 0.15, mask_token_prob: float = 0.8,
                random_token_prob: float = 0.1,
                generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """BERT masking of a batch of token ids.

    Args:
        input_ids: (B, L) token ids.
        mask_token_id: id of [MASK].
        vocab_size: random replacements are drawn uniformly from ``[0, vocab_size)`` minus
            ``special_token_ids``.
        special_token_ids: ids never picked nor drawn ([CLS], [SEP], [PAD], [MASK], ...).
        attention_mask: (B, L), 1 / True on real tokens, 0 on padding (never picked).
        mask_prob: probability that a maskable token is picked.
        mask_token_prob, random_token_prob: of a picked token, the probabilities of
            [MASK] and of a random token; it is kept unchanged otherwise.
        generator: random generator on the device of ``input_ids``.

    Returns:
        ``(masked_ids, labels)``, both (B, L): the ids to encode, and the original id at
        picked positions, ``-100`` elsewhere.
    """
    if input_ids.dim() != 2 or input_ids.is_floating_point():
        raise ValueError(f'input_ids must be integer (B, L) token ids, got {input_ids.dtype} '
                         f'{tuple(input_ids.shape)}')
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f'attention_mask must be (B, L) = {tuple(input_ids.shape)} like '
                         f'input_ids, got {tuple(attention_mask.shape)}')
    if not (0 <= mask_prob <= 1 and mask_token_prob >= 0 and random_token_prob >= 0
            and mask_token_prob + random_token_prob <= 1):
        raise ValueError('need 0 <= mask_prob <= 1 and mask_token_prob + random_token_prob '
                         f'<= 1 (both >= 0), got {mask_prob}, {mask_token_prob}, '
                         f'{random_token_prob}')
    device = input_ids.device
    special = torch.as_tensor(list(special_token_ids), dtype=input_ids.dtype, device=device)
    maskable = ~torch.isin(input_ids, special)
    if attention_mask is not None:
        maskable &= attention_mask.bool()
    picked = maskable & (torch.rand(input_ids.shape, generator=generator, device=device)
                         < mask_prob)
    action = torch.rand(input_ids.shape, generator=generator, device=device)
    to_mask = picked & (action < mask_token_prob)
    to_random = picked & (action >= mask_token_prob) & (
        action < mask_token_prob + random_token_prob)

    candidates = torch.arange(vocab_size, dtype=input_ids.dtype, device=device)
    candidates = candidates[~torch.isin(candidates, special)]
    if len(candidates) == 0:
        raise ValueError(f'no token of the vocabulary of {vocab_size} is left for random '
                         'replacement once the special tokens are removed')
    random_ids = candidates[torch.randint(len(candidates), input_ids.shape, generator=generator,
                                          device=device)]
    masked_ids = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked_ids = torch.where(to_random, random_ids, masked_ids)
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return masked_ids, labels


@MODELS.register_module()
class MaskedLanguageModelingLoss(nn.Module):
    """BERT's token prediction head and the cross-entropy on the masked positions.

    Args:
        hidden_dim: width H of the encoder's output at text positions.
        vocab_size: V, number of token ids.
        layer_norm_eps: epsilon of the head's LayerNorm (BERT: 1e-12).
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, vocab_size: int, layer_norm_eps: float = 1e-12,
                 loss_weight: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.vocab_size = vocab_size
        self.loss_weight = loss_weight
        self.head = PredictionHead(hidden_dim, vocab_size, layer_norm_eps)

    def tie_weights(self, word_embeddings: nn.Embedding) -> None:
        """Share the decoder's weight with the text encoder's (V, H) word embeddings."""
        decoder = self.head.decoder
        if word_embeddings.weight.shape != decoder.weight.shape:
            raise ValueError(f'word embeddings must be (V, H) = {tuple(decoder.weight.shape)} '
                             'to tie them to the decoder, got '
                             f'{tuple(word_embeddings.weight.shape)}')
        decoder.weight = word_embeddings.weight

    def predict(self, hidden_states: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Logits (M, V) and targets (M,) of the M positions whose label is not ``-100``
        (row-major order), from ``hidden_states`` (B, L, H) and ``labels`` (B, L)."""
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != self.hidden_dim:
            raise ValueError(f'hidden_states must be (B, L, {self.hidden_dim}), got '
                             f'{tuple(hidden_states.shape)}')
        if labels.shape != hidden_states.shape[:2]:
            raise ValueError(f'labels must be (B, L) = {tuple(hidden_states.shape[:2])} like the '
                             f'hidden states, got {tuple(labels.shape)}')
        picked = labels != IGNORE_INDEX
        return self.head(hidden_states[picked]), labels[picked]

    def forward(self, hidden_states: Tensor, labels: Tensor,
                soft_targets: Optional[Tensor] = None, alpha: float = 0.0) -> Tensor:
        """Mean cross-entropy (scalar) over the masked positions.

        Args:
            hidden_states: (B, L, H) encoder output at text positions.
            labels: (B, L) original ids at masked positions, -100 elsewhere.
            soft_targets: (M, V) probabilities of the masked positions (row-major order,
                e.g. softmax of the momentum model's ``predict`` logits), mixed in with
                weight ``alpha``.
        A batch without masked positions gives 0 (still connected to the graph).
        """
        logits, targets = self.predict(hidden_states, labels)
        if len(targets) == 0:
            return hidden_states.sum() * 0.0
        loss = F.cross_entropy(logits, targets)
        if soft_targets is not None:
            if soft_targets.shape != logits.shape:
                raise ValueError(f'soft_targets must be (M, V) = {tuple(logits.shape)}, one '
                                 'distribution per masked position, got '
                                 f'{tuple(soft_targets.shape)}')
            loss = (1 - alpha) * loss + alpha * F.cross_entropy(logits, soft_targets.detach())
        return self.loss_weight * loss
