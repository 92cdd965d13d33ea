"""Pretraining objectives, one per module, registered in ``vlkd.registry.MODELS``."""
from .image_contrastive import ImageContrastiveLoss
from .itc import ImageTextContrastiveLoss
from .itm import ImageTextMatchingLoss, matching_pairs, sample_negatives
from .mlm import MaskedLanguageModelingLoss, mask_tokens
from .unicl import ImageTextLabelContrastiveLoss

__all__ = ['ImageContrastiveLoss', 'ImageTextContrastiveLoss', 'ImageTextLabelContrastiveLoss',
           'ImageTextMatchingLoss', 'matching_pairs', 'sample_negatives',
           'MaskedLanguageModelingLoss', 'mask_tokens']
