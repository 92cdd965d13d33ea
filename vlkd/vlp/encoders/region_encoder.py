"""Detector region features with the visual geometry embedding (UNITER-style).

A region with feature ``f`` (F,) and box ``x1, y1, x2, y2`` in an image of ``W x H`` pixels
has the geometry vector

    g = [x1/W, y1/H, x2/W, y2/H, w/W, h/H, w*h/(W*H)],   w = x2 - x1, h = y2 - y1,

and the token ``LayerNorm(W_f f + b_f + W_g g + b_g)`` of width D.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .output import EncoderOutput
from .regions import RegionBatch

GEOMETRY_DIM = 7


def box_geometry(boxes: Tensor, image_sizes: Tensor) -> Tensor:
    """Geometry vectors (B, N, 7) of boxes (B, N, 4) xyxy px in images (B, 2) (height,
    width) px: normalised corners, width, height and area."""
    height = image_sizes[:, 0, None].to(boxes.dtype)
    width = image_sizes[:, 1, None].to(boxes.dtype)
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return torch.stack([x1 / width, y1 / height, x2 / width, y2 / height, w, h, w * h], -1)


@MODELS.register_module()
class RegionFeatureEncoder(nn.Module):
    """Region tokens from precomputed regions (:class:`RegionBatch`, e.g. from region files
    via :func:`collate_regions`) or from a frozen detector run on the images.

    The output also carries ``features`` (the unmasked region features, targets of masked
    region feature regression), ``boxes`` and ``class_probs`` (the detector's distribution,
    targets of masked region classification). With ``image_token=True`` a whole-image token
    is put first (ViLBERT's IMG token: the mean region feature with the whole-image box and
    the mean class distribution); ``num_prefix_tokens`` says how many such tokens there are.

    Args:
        out_dim: token width D.
        feature_dim: F, the region feature size; taken from the detector if one is given.
        detector: arguments of a :class:`DetectorRegionExtractor` (frozen) that makes the
            regions from images.
        image_token: prepend the whole-image token.
        dropout: dropout on the tokens.
    """

    def __init__(self, out_dim: int, feature_dim: Optional[int] = None,
                 detector: Optional[dict] = None, image_token: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.detector = None
        if detector is not None:
            self.detector = MODELS.build(dict(type='DetectorRegionExtractor', **detector))
            if feature_dim not in (None, self.detector.feature_dim):
                raise ValueError(f'feature_dim={feature_dim}, but the detector gives '
                                 f'{self.detector.feature_dim}-d region features.')
            feature_dim = self.detector.feature_dim
        if feature_dim is None:
            raise ValueError('Give feature_dim (the size of the precomputed region features) '
                             'or a detector.')
        self.feature_dim = feature_dim
        self.width = out_dim
        self.num_prefix_tokens = int(image_token)
        self.feature_projection = nn.Linear(feature_dim, out_dim)
        self.geometry_projection = nn.Linear(GEOMETRY_DIM, out_dim)
        self.norm = nn.LayerNorm(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, regions: Optional[RegionBatch] = None, images: Optional[Tensor] = None,
                masked_regions: Optional[Tensor] = None) -> EncoderOutput:
        """Regions, or images for the detector (see :class:`DetectorRegionExtractor`).
        ``masked_regions`` (B, N) bool: regions whose features are zeroed (masked region
        modelling; their geometry stays)."""
        if (regions is None) == (images is None):
            raise ValueError('Give either regions (a RegionBatch) or images (with a detector).')
        if images is not None:
            if self.detector is None:
                raise ValueError('This RegionFeatureEncoder has no detector; give regions.')
            regions = self.detector(images)
        features, boxes, mask = regions.features, regions.boxes, regions.mask
        if features.dim() != 3 or features.shape[-1] != self.feature_dim:
            raise ValueError(f'Region features must be (B, N, {self.feature_dim}), got '
                             f'{tuple(features.shape)}.')
        if boxes.shape != features.shape[:2] + (4,) or mask.shape != features.shape[:2]:
            raise ValueError(f'boxes must be (B, N, 4) and mask (B, N) for features '
                             f'{tuple(features.shape)}; got {tuple(boxes.shape)}, '
                             f'{tuple(mask.shape)}.')
        if not mask.any(dim=1).all():
            empty = (~mask.any(dim=1)).nonzero()[0].item()
            raise ValueError(f'Image {empty} of the batch has no regions.')
        if masked_regions is not None and masked_regions.shape != mask.shape:
            raise ValueError(f'masked_regions must be (B, N) = {tuple(mask.shape)}, got '
                             f'{tuple(masked_regions.shape)}.')
        probs = regions.class_probs
        if self.num_prefix_tokens:
            features, boxes, mask, probs = self._prepend_image_token(regions)
            if masked_regions is not None:
                masked_regions = torch.cat([masked_regions.new_zeros(len(mask), 1),
                                            masked_regions], 1)
        inputs = features
        if masked_regions is not None:
            inputs = features.masked_fill(masked_regions[..., None], 0.0)
        geometry = box_geometry(boxes, regions.image_sizes.to(boxes.device))
        tokens = self.norm(self.feature_projection(inputs) + self.geometry_projection(geometry))
        tokens = self.dropout(tokens)
        if self.num_prefix_tokens:
            cls = tokens[:, 0]
        else:
            weights = mask.to(tokens.dtype)[..., None]
            cls = (tokens * weights).sum(1) / weights.sum(1)
        return EncoderOutput(tokens=tokens, mask=mask, cls=cls, features=features, boxes=boxes,
                             class_probs=probs)

    @staticmethod
    def _prepend_image_token(regions: RegionBatch):
        mask = regions.mask
        weights = mask.to(regions.features.dtype)[..., None]
        count = weights.sum(1, keepdim=True)
        mean_feature = (regions.features * weights).sum(1, keepdim=True) / count
        height, width = regions.image_sizes.to(regions.boxes).unbind(-1)
        zeros = torch.zeros_like(height)
        whole_box = torch.stack([zeros, zeros, width, height], -1)[:, None]
        features = torch.cat([mean_feature, regions.features], 1)
        boxes = torch.cat([whole_box, regions.boxes], 1)
        mask = torch.cat([mask.new_ones(len(mask), 1), mask], 1)
        probs = regions.class_probs
        if probs is not None:
            probs = torch.cat([(probs * weights).sum(1, keepdim=True) / count, probs], 1)
        return features, boxes, mask, probs
