"""Region-word alignment (GLIP): detection as grounding of regions to the prompt's tokens.

A detector's classification logits are replaced by alignment scores between its ``R``
region features ``o_r`` and the ``L`` token features ``w_t`` of a text prompt (the class
names joined, or a caption):

    S_rt = exp(log_scale) * cos(Q o_r, P w'_t) + b(w'_t),    w'_t = w_t / |w_t|,
    b(w') = <u, w'> + b_0,

with ``Q``, ``P`` projections to a joint space, ``log_scale`` learnable, ``u`` and ``b_0``
a learnable token bias initialised to the focal prior (``b_0 = -log((1 - pi) / pi)``). The
target is the positive map ``M_rt = 1`` when region ``r`` is assigned to a box whose phrase
covers token ``t``; the loss is the sigmoid focal loss (or BCE) of ``S`` against ``M`` over
real tokens and regions, summed and divided by the number of positive regions.

:func:`positive_map_from_char_spans` builds a box-by-token map from the phrases' character
spans and a tokenizer's offsets; index its rows by the detector's box assignment to get the
region-level map. :func:`token_logits_to_class_logits` turns token scores into class scores.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS


def positive_map_from_char_spans(char_spans: Sequence[Sequence[Tuple[int, int]]],
                                 offsets: Tensor) -> Tensor:
    """Box-by-token map of which tokens each box's phrase covers.

    Args:
        char_spans: per box, the ``(start, end)`` character spans (end exclusive) of its
            phrase(s) in the prompt.
        offsets: (L, 2) character ``(start, end)`` of every token (a fast tokenizer's
            offsets); special and padding tokens have an empty span and are never covered.

    Returns:
        bool (K, L) for the K boxes: True where a token's characters overlap a span.
    """
    if offsets.dim() != 2 or offsets.shape[1] != 2:
        raise ValueError(f'offsets must be (L, 2) character spans of the tokens, got '
                         f'{tuple(offsets.shape)}')
    box_index = [k for k, spans in enumerate(char_spans) for _ in spans]
    spans = [span for spans in char_spans for span in spans]
    positive = torch.zeros(len(char_spans), len(offsets), dtype=torch.bool,
                           device=offsets.device)
    if not spans:
        return positive
    spans = torch.as_tensor(spans, dtype=offsets.dtype, device=offsets.device)
    if spans.dim() != 2 or spans.shape[1] != 2 or (spans[:, 1] <= spans[:, 0]).any():
        raise ValueError('every character span must be a non-empty (start, end) pair, got '
                         f'{char_spans}')
    start, end = offsets[:, 0], offsets[:, 1]
    overlap = ((start[None] < spans[:, 1:]) & (end[None] > spans[:, :1])
               & (end > start)[None])  # (S, L)
    box_index = torch.as_tensor(box_index, device=offsets.device)
    return positive.index_put((box_index,), overlap, accumulate=True)


def token_logits_to_class_logits(logits: Tensor, class_token_map: Tensor,
                                 reduction: str = 'mean') -> Tensor:
    """Class scores from token scores: the mean or max over each class's tokens.

    Args:
        logits: (..., L) region-token logits.
        class_token_map: (K, L) bool, the tokens of each of the K class names.
        reduction: ``'mean'`` or ``'max'``.

    Returns:
        (..., K) class logits.
    """
    if class_token_map.dim() != 2 or class_token_map.shape[1] != logits.shape[-1]:
        raise ValueError(f'class_token_map must be (K, {logits.shape[-1]}) like the logits\' '
                         f'tokens, got {tuple(class_token_map.shape)}')
    counts = class_token_map.sum(dim=1)
    if (counts == 0).any():
        raise ValueError(f'class {(counts == 0).nonzero()[0].item()} has no token in the prompt')
    if reduction == 'mean':
        weights = class_token_map.to(logits.dtype) / counts[:, None]
        return logits @ weights.T
    if reduction == 'max':
        scores = logits[..., None, :].masked_fill(~class_token_map, -torch.inf)
        return scores.amax(dim=-1)
    raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}")


@MODELS.register_module()
class RegionWordAlignmentLoss(nn.Module):
    """Region-token alignment logits and their focal / BCE loss against a positive map.

    Args:
        region_dim: size of the region features.
        token_dim: size of the token features.
        embed_dim: size of the joint space both are projected to.
        loss_type: ``'focal'`` (sigmoid focal loss, GLIP) or ``'bce'``.
        alpha, gamma: focal loss weighting of positives and focusing exponent.
        prior_prob: initial probability of every alignment (sets the bias).
        loss_weight: factor applied to the loss.
    """

    def __init__(self, region_dim: int, token_dim: int, embed_dim: int,
                 loss_type: str = 'focal', alpha: float = 0.25, gamma: float = 2.0,
                 prior_prob: float = 0.01, loss_weight: float = 1.0):
        super().__init__()
        if loss_type not in ('focal', 'bce'):
            raise ValueError(f"loss_type must be 'focal' or 'bce', got {loss_type!r}")
        self.region_dim, self.token_dim = region_dim, token_dim
        self.loss_type = loss_type
        self.alpha, self.gamma = alpha, gamma
        self.loss_weight = loss_weight
        self.region_proj = nn.Linear(region_dim, embed_dim)
        self.token_proj = nn.Linear(token_dim, embed_dim)
        self.log_scale = nn.Parameter(torch.tensor(0.0))
        self.token_bias = nn.Linear(token_dim, 1)
        nn.init.zeros_(self.token_bias.weight)
        nn.init.constant_(self.token_bias.bias, -math.log((1 - prior_prob) / prior_prob))

    def logits(self, region_features: Tensor, token_features: Tensor) -> Tensor:
        """(B, R, L) alignment logits of ``region_features`` (B, R, Dr) and
        ``token_features`` (B, L, Dt)."""
        if (region_features.dim() != 3 or token_features.dim() != 3
                or region_features.shape[0] != token_features.shape[0]
                or region_features.shape[-1] != self.region_dim
                or token_features.shape[-1] != self.token_dim):
            raise ValueError(f'region and token features must be (B, R, {self.region_dim}) and '
                             f'(B, L, {self.token_dim}), got {tuple(region_features.shape)} '
                             f'and {tuple(token_features.shape)}')
        regions = F.normalize(self.region_proj(region_features), dim=-1)
        tokens = F.normalize(token_features, dim=-1)
        bias = self.token_bias(tokens).transpose(1, 2)  # (B, 1, L)
        similarity = regions @ F.normalize(self.token_proj(tokens), dim=-1).transpose(1, 2)
        return self.log_scale.exp() * similarity + bias

    def forward(self, region_features: Tensor, token_features: Tensor, positive_map: Tensor,
                token_mask: Optional[Tensor] = None,
                region_mask: Optional[Tensor] = None) -> Tensor:
        """Loss (scalar): focal / BCE terms over real (region, token) pairs, summed and
        divided by the number of regions with a positive token (at least 1).

        Args:
            region_features: (B, R, Dr); token_features: (B, L, Dt).
            positive_map: (B, R, L) bool / 0-1, the tokens each region should align to
                (all zero for background regions).
            token_mask: (B, L) 1 / True on real tokens; region_mask: (B, R) on real regions.
        """
        logits = self.logits(region_features, token_features)
        if positive_map.shape != logits.shape:
            raise ValueError(f'positive_map must be (B, R, L) = {tuple(logits.shape)}, got '
                             f'{tuple(positive_map.shape)}')
        batch, regions, tokens = logits.shape
        valid = torch.ones_like(logits, dtype=torch.bool)
        if token_mask is not None:
            if token_mask.shape != (batch, tokens):
                raise ValueError(f'token_mask must be (B, L) = ({batch}, {tokens}), got '
                                 f'{tuple(token_mask.shape)}')
            valid = valid & token_mask.bool()[:, None, :]
        if region_mask is not None:
            if region_mask.shape != (batch, regions):
                raise ValueError(f'region_mask must be (B, R) = ({batch}, {regions}), got '
                                 f'{tuple(region_mask.shape)}')
            valid = valid & region_mask.bool()[:, :, None]
        targets = positive_map.to(logits.dtype) * valid
        terms = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
        if self.loss_type == 'focal':
            prob = logits.sigmoid()
            miss = prob * (1 - targets) + (1 - prob) * targets  # 1 - p_t
            weight = self.alpha * targets + (1 - self.alpha) * (1 - targets)
            terms = weight * miss.pow(self.gamma) * terms
        num_positive = (targets > 0).any(dim=2).sum().clamp(min=1)
        return self.loss_weight * (terms * valid).sum() / num_positive
