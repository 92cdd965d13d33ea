"""Masked vision modelling on visual tokens (UNITER's MRFR / MRC / MRC-KL).

Some visual tokens (detector regions, grid cells, patches) are masked in the input, the
model encodes the sequence (with the text), and the outputs ``h`` at masked positions are
asked to recover what was hidden:

- feature regression: project ``h`` to the feature size, mean squared error to the
  original visual feature ``f`` (``mean over masked tokens and dims of (head(h) - f)^2``);
- feature classification, hard labels: cross-entropy to the detector's top class
  ``argmax_c p_c`` of the region;
- feature classification, soft labels: ``KL(p || softmax(head(h)))`` to the detector's whole
  class distribution ``p``.

:func:`mask_visual_tokens` picks the tokens; :func:`mask_visual_features` also replaces them
(by zeros as in UNITER, or by a learnable mask embedding).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .heads import PredictionHead


def mask_visual_tokens(valid_mask: Tensor, mask_ratio: float,
                       generator: Optional[torch.Generator] = None,
                       min_count: int = 1) -> Tensor:
    """Pick ``max(min_count, round(mask_ratio * n_b))`` of the ``n_b`` real tokens of every
    sample (all of them if there are fewer), uniformly without replacement.

    Args:
        valid_mask: (B, N), 1 / True on real tokens, 0 on padding (never picked).
        mask_ratio: fraction of the real tokens to mask, in (0, 1].
        generator: random generator on the device of ``valid_mask``.
        min_count: fewest tokens picked in a sample that has that many.

    Returns:
        bool (B, N), True on masked tokens.
    """
    if valid_mask.dim() != 2:
        raise ValueError(f'valid_mask must be (B, N), got {tuple(valid_mask.shape)}')
    if not 0 < mask_ratio <= 1:
        raise ValueError(f'mask_ratio must be in (0, 1], got {mask_ratio}')
    valid = valid_mask.bool()
    num_valid = valid.sum(dim=1)
    num_masked = (num_valid * mask_ratio).round().long().clamp(min=min_count)
    num_masked = num_masked.minimum(num_valid)
    scores = torch.rand(valid.shape, generator=generator, device=valid.device)
    scores = scores.masked_fill(~valid, 2.0)  # padding sorts after every real token
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < num_masked[:, None]


def mask_visual_features(features: Tensor, mask_ratio: float,
                         valid_mask: Optional[Tensor] = None,
                         mask_embedding: Optional[Tensor] = None,
                         generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Mask visual tokens (:func:`mask_visual_tokens`) and replace their features.

    Args:
        features: (B, N, D) visual token features.
        mask_ratio: fraction of each sample's real tokens to mask.
        valid_mask: (B, N), 1 / True on real tokens (default: all real).
        mask_embedding: (D,) replacement of the masked features (default: zeros).

    Returns:
        ``(masked_features (B, N, D), mask (B, N) bool)``.
    """
    if features.dim() != 3:
        raise ValueError(f'features must be (B, N, D), got {tuple(features.shape)}')
    if valid_mask is None:
        valid_mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
    elif valid_mask.shape != features.shape[:2]:
        raise ValueError(f'valid_mask must be (B, N) = {tuple(features.shape[:2])} like the '
                         f'features, got {tuple(valid_mask.shape)}')
    if mask_embedding is None:
        mask_embedding = features.new_zeros(features.shape[-1])
    elif mask_embedding.shape != features.shape[-1:]:
        raise ValueError(f'mask_embedding must be ({features.shape[-1]},), got '
                         f'{tuple(mask_embedding.shape)}')
    mask = mask_visual_tokens(valid_mask, mask_ratio, generator)
    return torch.where(mask[..., None], mask_embedding.to(features.dtype), features), mask


def _masked_outputs(hidden_states: Tensor, mask: Tensor, hidden_dim: int) -> Tensor:
    """(M, H) outputs at the masked positions."""
    if hidden_states.dim() != 3 or hidden_states.shape[-1] != hidden_dim:
        raise ValueError(f'hidden_states must be (B, N, {hidden_dim}), got '
                         f'{tuple(hidden_states.shape)}')
    if mask.shape != hidden_states.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f'mask must be bool (B, N) = {tuple(hidden_states.shape[:2])}, got '
                         f'{mask.dtype} {tuple(mask.shape)}')
    return hidden_states[mask]


@MODELS.register_module()
class MaskedFeatureRegressionLoss(nn.Module):
    """Mean squared error of projected outputs to the original features (MRFR).

    Args:
        hidden_dim: width H of the encoder outputs at visual positions.
        feature_dim: size F of the original visual features.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, feature_dim: int, loss_weight: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.feature_dim = feature_dim
        self.loss_weight = loss_weight
        self.head = PredictionHead(hidden_dim, feature_dim)

    def forward(self, hidden_states: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        """Loss (scalar) from ``hidden_states`` (B, N, H), the unmasked input ``features``
        (B, N, F) and the bool ``mask`` (B, N); 0 when nothing is masked."""
        outputs = _masked_outputs(hidden_states, mask, self.hidden_dim)
        if features.shape != (*mask.shape, self.feature_dim):
            raise ValueError(f'features must be (B, N, F) = ({mask.shape[0]}, {mask.shape[1]}, '
                             f'{self.feature_dim}), got {tuple(features.shape)}')
        if len(outputs) == 0:
            return hidden_states.sum() * 0.0
        return self.loss_weight * F.mse_loss(self.head(outputs), features[mask].detach())


@MODELS.register_module()
class MaskedFeatureClassificationLoss(nn.Module):
    """Classification of masked regions into the detector's classes (MRC, MRC-KL).

    Args:
        hidden_dim: width H of the encoder outputs at visual positions.
        num_classes: C, classes of the detector's distribution.
        soft_labels: False: cross-entropy to the detector's top class; True: KL divergence
            to its whole distribution.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, num_classes: int, soft_labels: bool = False,
                 loss_weight: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.num_classes = num_classes
        self.soft_labels = soft_labels
        self.loss_weight = loss_weight
        self.head = PredictionHead(hidden_dim, num_classes)

    def forward(self, hidden_states: Tensor, class_probs: Tensor, mask: Tensor) -> Tensor:
        """Loss (scalar), mean over masked regions, from ``hidden_states`` (B, N, H), the
        detector's class probabilities ``class_probs`` (B, N, C) and the bool ``mask``
        (B, N); 0 when nothing is masked."""
        outputs = _masked_outputs(hidden_states, mask, self.hidden_dim)
        if class_probs.shape != (*mask.shape, self.num_classes):
            raise ValueError(f'class_probs must be (B, N, C) = ({mask.shape[0]}, '
                             f'{mask.shape[1]}, {self.num_classes}), the detector\'s class '
                             f'distribution of every region, got {tuple(class_probs.shape)}')
        if len(outputs) == 0:
            return hidden_states.sum() * 0.0
        log_probs = F.log_softmax(self.head(outputs), dim=-1)
        targets = class_probs[mask].detach()
        if self.soft_labels:
            loss = F.kl_div(log_probs, targets, reduction='batchmean')
        else:
            loss = F.nll_loss(log_probs, targets.argmax(dim=-1))
        return self.loss_weight * loss
