"""The pretraining core: image-text models, their objectives and zero-shot metrics."""
from .clip_model import CLIPPretrainer, build_open_clip_model, build_tokenizer
from . import encoders, fusion  # noqa: F401  (registers encoders, fusion modules, VLMo hook)
from .metrics import ZeroShotCropAccuracy, split_accuracy, teacher_crop_accuracy
from .momentum import FeatureQueue, MomentumContrastiveLoss, MomentumModel, ramped_alpha
from .objectives import ImageTextContrastiveLoss
from . import backbone, data_preprocessors, tasks  # noqa: F401  (registers them)
from . import sharding  # noqa: F401  (registers the FSDP wrap policy)
from .model import VLPModel
from .views import VideoBatch

__all__ = ['CLIPPretrainer', 'build_open_clip_model', 'build_tokenizer', 'ZeroShotCropAccuracy',
           'split_accuracy', 'teacher_crop_accuracy', 'ImageTextContrastiveLoss',
           'FeatureQueue', 'MomentumContrastiveLoss', 'MomentumModel', 'ramped_alpha',
           'VLPModel', 'VideoBatch']
