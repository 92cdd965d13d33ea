"""Pretraining objectives, one per module, registered in ``vlkd.registry.MODELS``."""
from .fdt import FDTContrastiveLoss, sparsemax
from .fom import FrameOrderModelingLoss, shuffle_frames
from .image_contrastive import ImageContrastiveLoss
from .itc import ImageTextContrastiveLoss
from .itm import ImageTextMatchingLoss, matching_pairs, sample_negatives
from .mim import MaskedImageModelingLoss, MaskedMultimodalModelingLoss, patchify
from .mlm import MaskedLanguageModelingLoss, mask_tokens
from .mvm import (MaskedFeatureClassificationLoss, MaskedFeatureRegressionLoss,
                  mask_visual_features, mask_visual_tokens)
from .prefix_lm import (PrefixLanguageModelingLoss, prefix_lm_attention_mask,
                        prefix_lm_labels, sample_prefix_lengths)
from .region_word import (RegionWordAlignmentLoss, positive_map_from_char_spans,
                          token_logits_to_class_logits)
from .unicl import ImageTextLabelContrastiveLoss
from .wra import WordRegionAlignmentLoss, ipot

__all__ = ['ImageContrastiveLoss', 'ImageTextContrastiveLoss', 'ImageTextLabelContrastiveLoss',
           'ImageTextMatchingLoss', 'matching_pairs', 'sample_negatives',
           'MaskedLanguageModelingLoss', 'mask_tokens', 'PrefixLanguageModelingLoss',
           'prefix_lm_attention_mask', 'prefix_lm_labels', 'sample_prefix_lengths',
           'MaskedFeatureRegressionLoss', 'MaskedFeatureClassificationLoss',
           'mask_visual_features', 'mask_visual_tokens', 'MaskedImageModelingLoss',
           'MaskedMultimodalModelingLoss', 'patchify', 'WordRegionAlignmentLoss', 'ipot',
           'FrameOrderModelingLoss', 'shuffle_frames', 'RegionWordAlignmentLoss',
           'positive_map_from_char_spans', 'token_logits_to_class_logits',
           'FDTContrastiveLoss', 'sparsemax']
