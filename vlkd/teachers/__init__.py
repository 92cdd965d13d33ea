"""Teachers: frozen vision-language models behind one interface (:class:`Teacher`; the methods
students call are listed in :mod:`vlkd.teachers.base`).

Adapters (registered in ``vlkd.registry.MODELS``, built from config dicts by
:func:`build_teacher`): ``VLKDTeacher`` (a checkpoint pretrained by vlkd: a CLIPPretrainer or
a VLPModel recipe with a joint embedding space), :class:`OpenCLIPTeacher` (any open_clip
model with local weights), ``OpenAICLIPTeacher`` (OpenAI's TorchScript CLIP archives),
:class:`HFCLIPTeacher` (a transformers CLIPModel directory) and ``ZooTeacher`` (any of them
from a model-zoo entry, as ``Teacher.from_zoo``).
"""
from .base import Teacher, build_teacher
from .dense import DenseFeatures
from .dense_scores import dense_class_scores, key_smoothing, prompt_denoising
from .embedding_file import ClassEmbeddingFileError
from .hf_clip_teacher import HFCLIPTeacher, clip_bpe_tokenizer
from .open_clip_teacher import OpenAICLIPTeacher, OpenCLIPModelTeacher, OpenCLIPTeacher
from .templates import PHOTO_TEMPLATES, SHAPES_TEMPLATES, TEMPLATE_SETS, resolve_templates
from .text_cache import TextEmbeddingCache
from .vlkd_teacher import CLIPCheckpointTeacher, VLKDTeacher, VLPCheckpointTeacher
from .zoo_teacher import ZooTeacher, teacher_from_zoo

__all__ = ['Teacher', 'build_teacher', 'OpenCLIPModelTeacher', 'OpenCLIPTeacher',
           'OpenAICLIPTeacher', 'HFCLIPTeacher', 'clip_bpe_tokenizer', 'VLKDTeacher',
           'CLIPCheckpointTeacher', 'VLPCheckpointTeacher', 'ZooTeacher', 'teacher_from_zoo',
           'DenseFeatures', 'dense_class_scores', 'key_smoothing', 'prompt_denoising',
           'ClassEmbeddingFileError', 'TextEmbeddingCache', 'PHOTO_TEMPLATES',
           'SHAPES_TEMPLATES', 'TEMPLATE_SETS', 'resolve_templates']
