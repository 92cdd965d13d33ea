"""Open-vocabulary semantic segmentation students for mmseg: pixel-text heads, distillation
from a teacher's dense embeddings, the teacher's zero-shot segmentation."""
from .class_text import class_text_embeddings
from .dense_cache import BuildDenseTeacherCacheHook, DenseCacheMismatch, DenseTeacherCache
from .dense_views import EncodeDense, SlidingWindowDense, build_dense_view
from .losses import DenseFeatureDistillLoss, PseudoLabelLoss
from .pixel_text_head import PixelTextHead
from .segmentor import OpenVocabEncoderDecoder
from .zero_shot import TeacherZeroShotSegmentor, teacher_pixels, zero_shot_logits

__all__ = ['class_text_embeddings', 'BuildDenseTeacherCacheHook', 'DenseCacheMismatch',
           'DenseTeacherCache', 'EncodeDense', 'SlidingWindowDense', 'build_dense_view',
           'DenseFeatureDistillLoss', 'PseudoLabelLoss',
           'PixelTextHead', 'OpenVocabEncoderDecoder', 'TeacherZeroShotSegmentor',
           'teacher_pixels', 'zero_shot_logits']
