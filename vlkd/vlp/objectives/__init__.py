"""Pretraining objectives, one per module, registered in ``vlkd.registry.MODELS``."""
from .image_contrastive import ImageContrastiveLoss
from .itc import ImageTextContrastiveLoss

__all__ = ['ImageContrastiveLoss', 'ImageTextContrastiveLoss']
