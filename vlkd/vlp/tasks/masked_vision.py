"""Masked vision tasks: masked image modelling on patches (unimodal), masked feature
regression / classification on fused visual units (UNITER's MRFR, MRC, MRC-KL), and
masked multimodal modelling (FLAVA).

Masks come from :meth:`PretrainingStep.masked_units`, so tasks asking with the same ratio
share one masked input and, for the fused tasks, one fused forward pass (UNITER masks one
modality at a time: the caption stays whole while regions are masked).
"""
from typing import Dict, Optional, Tuple

from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.objectives import (MaskedFeatureClassificationLoss, MaskedFeatureRegressionLoss,
                                 MaskedImageModelingLoss, MaskedMultimodalModelingLoss)
from vlkd.vlp.views import VisualView
from .base import PretrainingStep, PretrainingTask


def _patch_size(backbone, what: str) -> int:
    if backbone.patch_size is None:
        raise ValueError(f'{what} regresses the pixels of square patches: it needs a patch '
                         'image encoder (ViTPatchEncoder or MoMEBackbone).')
    return backbone.patch_size


def _units(tokens: Tensor, unit_mask: Tensor) -> Tensor:
    """The last N tokens (B, N, D): the visual units (patches, regions) of an output."""
    return tokens[:, -unit_mask.shape[1]:]


@MODELS.register_module()
class MaskedImageTask(PretrainingTask):
    """MIM: a fraction of the patches replaced by the [MASK] embedding, their pixels
    regressed from the image encoder's outputs (SimMIM / MAE targets; FLAVA's unimodal
    MIM, VLMo's image-only stage). Targets are the preprocessed pixels.

    Args:
        mask_ratio: fraction of each image's patches masked.
        loss_type: ``'l1'`` or ``'l2'``; normalize_target: per-patch normalised targets.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, mask_ratio: float = 0.4, loss_type: str = 'l1',
                 normalize_target: bool = True, weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        self.mask_ratio = mask_ratio
        self.loss = MaskedImageModelingLoss(
            backbone.image_width, patch_size=_patch_size(backbone, 'Masked image modelling'),
            loss_type=loss_type, normalize_target=normalize_target)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        image, mask = step.masked_units(self.mask_ratio)
        return dict(loss=self.loss(_units(image.encoded.tokens, mask), step.image.inputs, mask))


class _FusedMaskedUnits(PretrainingTask):
    """Shared by the fused masked-unit tasks: masked visual units fused with the whole
    caption, once per mask ratio."""

    def __init__(self, backbone, mask_ratio: float, weight: float, stages):
        super().__init__(weight, stages)
        if backbone.fusion_width is None:
            raise ValueError(f'{type(self).__name__} reads fused visual tokens: give the '
                             'backbone a fusion module that updates them (single-stream or '
                             'co-attention).')
        self.mask_ratio = mask_ratio

    @staticmethod
    def fused_units(step: PretrainingStep, mask_ratio: float
                    ) -> Tuple[Tensor, VisualView, Tensor]:
        """(fused unit outputs (B, N, H), the masked view, unit mask (B, N))."""
        def compute():
            image, mask = step.masked_units(mask_ratio)
            fused = step.backbone.fuse(image, step.text)
            if fused.image_tokens is None:
                raise ValueError('The fusion module does not update the visual tokens '
                                 '(cross-attention fusion): masked region modelling needs '
                                 'single-stream or co-attention fusion.')
            return _units(fused.image_tokens, mask), image, mask
        return step.cached(('fused_masked_units', mask_ratio), compute)


@MODELS.register_module()
class MaskedFeatureRegressionTask(_FusedMaskedUnits):
    """MRFR: the masked units' input features (region features, grid features, frame
    features) regressed (L2) from their fused outputs.

    Args:
        feature_dim: size of the input features; default the region encoder's
            ``feature_dim``.
        mask_ratio: fraction of each sample's units masked (UNITER: 0.15).
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, feature_dim: Optional[int] = None, mask_ratio: float = 0.15,
                 weight: float = 1.0, stages=None):
        super().__init__(backbone, mask_ratio, weight, stages)
        feature_dim = feature_dim or getattr(backbone.image_encoder, 'feature_dim', None)
        if feature_dim is None:
            raise ValueError('Give feature_dim, the size of the visual input features to '
                             'regress.')
        self.loss = MaskedFeatureRegressionLoss(backbone.fusion_width, feature_dim)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        hidden, image, mask = self.fused_units(step, self.mask_ratio)
        features = image.encoded.features
        if features is None:
            raise ValueError('The visual encoder gives no input features to regress '
                             '(region, grid and frame encoders do).')
        return dict(loss=self.loss(hidden, _units(features, mask), mask))


@MODELS.register_module()
class MaskedFeatureClassificationTask(_FusedMaskedUnits):
    """MRC (``soft_labels=False``: cross-entropy to the detector's top class) or MRC-KL
    (``soft_labels=True``: KL to its class distribution) of the masked regions.

    Args:
        num_classes: K, classes of the regions' ``class_probs``.
        mask_ratio, weight, stages: as :class:`MaskedFeatureRegressionTask`.
    """

    def __init__(self, backbone, num_classes: int, soft_labels: bool = False,
                 mask_ratio: float = 0.15, weight: float = 1.0, stages=None):
        super().__init__(backbone, mask_ratio, weight, stages)
        self.loss = MaskedFeatureClassificationLoss(backbone.fusion_width, num_classes,
                                                    soft_labels)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        hidden, image, mask = self.fused_units(step, self.mask_ratio)
        probs = image.encoded.class_probs
        if probs is None:
            raise ValueError('Masked region classification needs the detector\'s class '
                             'distribution of every region (region inputs with class_probs).')
        return dict(loss=self.loss(hidden, _units(probs, mask), mask))


@MODELS.register_module()
class MaskedMultimodalTask(PretrainingTask):
    """FLAVA's masked multimodal modelling: caption tokens and image patches of a pair
    masked together, fused, and both recovered (MLM on the fused text, pixel MIM on the
    fused patches).

    Args:
        text_mask_prob: fraction of maskable tokens picked.
        image_mask_ratio: fraction of the patches masked.
        loss_type, normalize_target: of the pixel regression.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, text_mask_prob: float = 0.15, image_mask_ratio: float = 0.4,
                 loss_type: str = 'l1', normalize_target: bool = True, weight: float = 1.0,
                 stages=None):
        super().__init__(weight, stages)
        if backbone.fusion_width is None:
            raise ValueError('Masked multimodal modelling needs a fusion module.')
        width = backbone.fusion_width
        self.loss = MaskedMultimodalModelingLoss(
            mlm=dict(hidden_dim=width, vocab_size=backbone.vocab_size),
            mim=dict(hidden_dim=width, loss_type=loss_type, normalize_target=normalize_target,
                     patch_size=_patch_size(backbone, 'Masked multimodal modelling')),
            text_mask_prob=text_mask_prob, image_mask_ratio=image_mask_ratio)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        text, labels = step.masked_text(self.loss.text_mask_prob)
        image, mask = step.masked_units(self.loss.image_mask_ratio)
        fused = step.backbone.fuse(image, text)
        if fused.image_tokens is None:
            raise ValueError('Masked multimodal modelling needs a fusion module that updates '
                             'the image tokens (single-stream or co-attention).')
        return self.loss(fused.text_tokens, labels, _units(fused.image_tokens, mask),
                         step.image.inputs, mask)
