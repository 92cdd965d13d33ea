"""Teachers: frozen vision-language models behind one interface (:class:`Teacher`).

Adapters (registered in ``vlkd.registry.MODELS``, built from config dicts by
:func:`build_teacher`): :class:`VLKDTeacher` (a checkpoint pretrained by vlkd) and
:class:`OpenCLIPTeacher` (any open_clip model with local weights).
"""
from .base import Teacher, build_teacher
from .open_clip_teacher import OpenCLIPModelTeacher, OpenCLIPTeacher
from .templates import PHOTO_TEMPLATES, SHAPES_TEMPLATES, TEMPLATE_SETS, resolve_templates
from .text_cache import TextEmbeddingCache
from .vlkd_teacher import VLKDTeacher

__all__ = ['Teacher', 'build_teacher', 'OpenCLIPModelTeacher', 'OpenCLIPTeacher',
           'VLKDTeacher', 'TextEmbeddingCache', 'PHOTO_TEMPLATES', 'SHAPES_TEMPLATES',
           'TEMPLATE_SETS', 'resolve_templates']
