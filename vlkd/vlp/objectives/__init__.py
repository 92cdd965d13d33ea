"""Pretraining objectives, one per module, registered in ``vlkd.registry.MODELS``."""
from .image_contrastive import ImageContrastiveLoss
from .itc import ImageTextContrastiveLoss
from .unicl import ImageTextLabelContrastiveLoss

__all__ = ['ImageContrastiveLoss', 'ImageTextContrastiveLoss', 'ImageTextLabelContrastiveLoss']
