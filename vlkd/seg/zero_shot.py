"""Zero-shot teacher segmentation: pixel-text similarity of the teacher's dense embeddings.

MaskCLIP's recipe: the teacher embeds every location of the image into its text space
(``Teacher.encode_dense``, (B, D, h, w)); a location's class logits are its cosine
similarities to the class-name embeddings times a logit scale; the logits are upsampled
bilinearly to the image. MaskCLIP's refinements are options: prompt denoising (classes
absent from an image are removed) and key smoothing (unsure locations take the
probabilities of locations with similar attention keys); see
:mod:`vlkd.teachers.dense_scores`.

The same logits are the source of the pseudo labels of :class:`PseudoLabelLoss`;
:class:`TeacherZeroShotSegmentor` runs them as an mmseg model (``tools/test.py``).
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.utils import resize
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.teachers import Teacher, build_teacher
from vlkd.teachers import dense_scores as refinements
from vlkd.teachers.class_names import check_class_names
from .class_text import class_text_embeddings
from .dense_views import build_dense_view

# logit of a class a pixel may not take: finite, so that bilinear resizing stays finite
REMOVED_LOGIT = -1e4


def zero_shot_logits(dense: Tensor, class_embeddings: Tensor, logit_scale: float = 100.0,
                     prompt_denoising: Optional[float] = None,
                     key_smoothing: Optional[float] = None,
                     keys: Optional[Tensor] = None) -> Tensor:
    """Class logits (B, C, h, w) of normalised dense embeddings (B, D, h, w) against
    normalised class embeddings (C, D): ``logit_scale * cosine``, with MaskCLIP's prompt
    denoising / key smoothing at the given thresholds (key smoothing needs the ``keys``
    of ``encode_dense(..., return_keys=True)``; its probabilities are returned as log
    probabilities)."""
    scores = refinements.dense_class_scores(dense, class_embeddings)
    if prompt_denoising is not None:
        scores = refinements.prompt_denoising(scores, prompt_denoising, logit_scale)
    if key_smoothing is None:
        return logit_scale * scores
    if keys is None:
        raise ValueError('key_smoothing needs the attention keys of the dense embeddings.')
    probs = refinements.key_smoothing(scores, keys, key_smoothing, logit_scale)
    return probs.clamp_min(1e-12).log()


def teacher_pixels(inputs: Tensor, data_preprocessor) -> Tensor:
    """RGB pixels in 0..255 (what teachers take) of a batch normalised by an mmseg
    ``SegDataPreprocessor`` (``bgr_to_rgb=True``); undoes its mean / std."""
    if not getattr(data_preprocessor, 'channel_conversion', True):
        raise ValueError('Teachers take RGB images: set bgr_to_rgb=True in the model\'s '
                         'data_preprocessor.')
    if getattr(data_preprocessor, '_enable_normalize', False):
        inputs = inputs * data_preprocessor.std + data_preprocessor.mean
    return inputs.float()


@MODELS.register_module()
class TeacherZeroShotSegmentor(BaseSegmentor):
    """The teacher itself as a segmenter (the zero-shot baseline; no training).

    Args:
        teacher: teacher config (e.g. ``dict(type='VLKDTeacher', checkpoint=...)``).
        classes: class names of the evaluated dataset, in its label order.
        templates: prompt templates (None: the teacher's default).
        synonyms: names describing a class instead of its own (e.g. background).
        logit_scale: of the softmax of prompt denoising and key smoothing.
        prompt_denoising, key_smoothing: MaskCLIP's thresholds, or None.
        dense: the teacher's dense view (:mod:`vlkd.seg.dense_views`), default
            ``dict(type='EncodeDense')``; the logits are resized to the input size.
        data_preprocessor: an mmseg ``SegDataPreprocessor`` (``bgr_to_rgb=True``).
    """

    def __init__(self, teacher: dict, classes: Sequence[str], templates=None,
                 synonyms: Optional[Dict[str, Sequence[str]]] = None,
                 logit_scale: float = 100.0, prompt_denoising: Optional[float] = None,
                 key_smoothing: Optional[float] = None, dense: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.teacher: Teacher = build_teacher(teacher)
        self.templates = templates
        self.synonyms = dict(synonyms or {})
        self.logit_scale = logit_scale
        self.prompt_denoising = prompt_denoising
        self.key_smoothing = key_smoothing
        self.dense_view = build_dense_view(dense)
        self.align_corners = False
        self.set_test_vocabulary(classes)

    def set_test_vocabulary(self, classes: Sequence[str],
                            embeddings: Optional[Tensor] = None) -> None:
        """Segment ``classes`` (embedded by the teacher unless ``embeddings`` (C, D))."""
        self.classes = check_class_names(classes, 'vocabulary')
        if embeddings is None:
            synonyms = {k: v for k, v in self.synonyms.items() if k in self.classes}
            embeddings = class_text_embeddings(
                lambda names: self.teacher.encode_class_names(names, self.templates),
                self.classes, synonyms)
        if tuple(embeddings.shape) != (len(self.classes), self.teacher.embed_dim):
            raise ValueError(f'Text embeddings have shape {tuple(embeddings.shape)}, but '
                             f'{len(self.classes)} classes of the teacher\'s dimension '
                             f'{self.teacher.embed_dim} were expected.')
        self.register_buffer('class_embeddings', embeddings.float(), persistent=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @torch.no_grad()
    def encode_decode(self, inputs: Tensor, batch_img_metas: Optional[List[dict]]) -> Tensor:
        """Logits (B, C, H, W) at the input size."""
        pixels = teacher_pixels(inputs, self.data_preprocessor)
        dense, keys = self.dense_view(self.teacher, pixels, self.key_smoothing is not None)
        logits = zero_shot_logits(dense, self.class_embeddings, self.logit_scale,
                                  self.prompt_denoising, self.key_smoothing, keys)
        return resize(logits, size=inputs.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        metas = [s.metainfo for s in data_samples] if data_samples is not None else None
        return self.postprocess_result(self.encode_decode(inputs, metas), data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[list] = None) -> Tensor:
        return self.encode_decode(inputs, None)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        raise RuntimeError('TeacherZeroShotSegmentor is not trained: evaluate it with '
                           'tools/test.py, or distil it into a student (configs/seg).')

    def extract_feat(self, inputs: Tensor) -> Tensor:
        return self.dense_view(self.teacher, teacher_pixels(inputs, self.data_preprocessor))[0]
