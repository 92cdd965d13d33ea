"""Teachers: frozen vision-language models behind one interface (:class:`Teacher`).

Adapters (registered in ``vlkd.registry.MODELS``, built from config dicts by
:func:`build_teacher`): ``VLKDTeacher`` (a checkpoint pretrained by vlkd: a CLIPPretrainer or
a VLPModel recipe with a joint embedding space) and :class:`OpenCLIPTeacher` (any open_clip
model with local weights).
"""
from .base import Teacher, build_teacher
from .open_clip_teacher import OpenCLIPModelTeacher, OpenCLIPTeacher
from .templates import PHOTO_TEMPLATES, SHAPES_TEMPLATES, TEMPLATE_SETS, resolve_templates
from .text_cache import TextEmbeddingCache
from .vlkd_teacher import CLIPCheckpointTeacher, VLKDTeacher, VLPCheckpointTeacher

__all__ = ['Teacher', 'build_teacher', 'OpenCLIPModelTeacher', 'OpenCLIPTeacher',
           'VLKDTeacher', 'CLIPCheckpointTeacher', 'VLPCheckpointTeacher',
           'TextEmbeddingCache', 'PHOTO_TEMPLATES', 'SHAPES_TEMPLATES', 'TEMPLATE_SETS',
           'resolve_templates']
