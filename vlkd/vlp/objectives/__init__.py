"""Pretraining objectives, one per module, registered in ``vlkd.registry.MODELS``."""
from .itc import ImageTextContrastiveLoss

__all__ = ['ImageTextContrastiveLoss']
