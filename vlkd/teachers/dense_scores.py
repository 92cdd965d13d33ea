"""Class scores of dense embeddings, and MaskCLIP's two refinements of them.

Scores are cosine similarities (B, C, h, w) between L2-normalised dense embeddings
(:meth:`vlkd.teachers.Teacher.encode_dense`) and L2-normalised class embeddings (C, D).
MaskCLIP (Zhou et al., ECCV 2022) refines them at test time:

- **prompt denoising** (:func:`prompt_denoising`): a class whose confidence (softmax over
  classes of ``logit_scale * scores``) stays below a threshold at every location of an
  image is taken to be absent from it, and its scores are set to :data:`REMOVED`;
- **key smoothing** (:func:`key_smoothing`): at locations whose highest confidence is
  below a threshold, the class probabilities are replaced by those of all locations
  weighted by the cosine similarity of their attention keys (locations of one object have
  similar keys). The output is then class probabilities, not similarities.

The public MaskCLIP code normalises the keys along the location axis before comparing them;
here they are normalised per location, so that the weights are cosine similarities.
"""
import torch
import torch.nn.functional as F
from torch import Tensor

# the score given to removed classes: below any cosine similarity
REMOVED = -100.0


def _check_scores(scores: Tensor) -> None:
    if not isinstance(scores, Tensor) or scores.dim() != 4:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f'scores must be a (B, C, h, w) tensor, got {shape}')


def dense_class_scores(dense: Tensor, class_embeddings: Tensor) -> Tensor:
    """Cosine similarities (B, C, h, w) of normalised dense embeddings (B, D, h, w) and
    normalised class embeddings (C, D)."""
    if dense.dim() != 4 or class_embeddings.dim() != 2 \
            or dense.shape[1] != class_embeddings.shape[1]:
        raise ValueError(f'dense embeddings (B, D, h, w) and class embeddings (C, D) must '
                         f'share D; got {tuple(dense.shape)} and '
                         f'{tuple(class_embeddings.shape)}')
    return torch.einsum('bdhw,cd->bchw', dense, class_embeddings.to(dense))


def prompt_denoising(scores: Tensor, threshold: float, logit_scale: float = 100.0) -> Tensor:
    """``scores`` (B, C, h, w) with the classes absent from each image set to
    :data:`REMOVED`: those whose softmax confidence (over classes, of ``logit_scale *
    scores``) is below ``threshold`` everywhere in the image (value suggested in the
    MaskCLIP code: 0.5)."""
    _check_scores(scores)
    confidence = (logit_scale * scores).softmax(dim=1).flatten(2).amax(dim=2)  # (B, C)
    absent = (confidence < threshold)[:, :, None, None]
    return scores.masked_fill(absent, REMOVED)


def key_smoothing(scores: Tensor, keys: Tensor, threshold: float,
                  logit_scale: float = 100.0) -> Tensor:
    """Class probabilities (B, C, h, w): the softmax over classes of ``logit_scale *
    scores``, where locations whose highest probability is below ``threshold`` take
    ``sum_j cos(k_i, k_j) p_j`` over all locations j of their image instead (``keys``
    (B, K, h, w) from ``encode_dense(..., return_keys=True)``; value suggested in the
    MaskCLIP code: 1.0, i.e. every location)."""
    _check_scores(scores)
    if keys.dim() != 4 or keys.shape[0] != scores.shape[0] \
            or keys.shape[-2:] != scores.shape[-2:]:
        raise ValueError(f'keys must be (B, K, h, w) on the grid of the scores '
                         f'{tuple(scores.shape)}, got {tuple(keys.shape)}')
    batch, classes, height, width = scores.shape
    probs = (logit_scale * scores).softmax(dim=1).flatten(2)  # (B, C, N)
    keys = F.normalize(keys.flatten(2).to(probs), dim=1)  # (B, K, N)
    similarity = keys.transpose(1, 2) @ keys  # (B, N, N), symmetric
    smoothed = probs @ similarity
    unsure = probs.amax(dim=1, keepdim=True) < threshold
    return torch.where(unsure, smoothed, probs).view(batch, classes, height, width)
