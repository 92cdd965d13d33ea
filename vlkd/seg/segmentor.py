"""Open-vocabulary EncoderDecoder: an mmseg segmenter with a :class:`PixelTextHead`,
distilled from a teacher.

Every training step: the backbone / neck features go through the head once, giving pixel
embeddings (B, D, h, w) and their logits over the training vocabulary; then

- ``decode.loss_ce``: ground truth (the head's ``loss_decode``; unseen pixels are ignored by
  the zero-shot dataset);
- ``distill.loss_pseudo``: :class:`PseudoLabelLoss` to the teacher's zero-shot
  segmentation over the training vocabulary;
- ``distill.loss_feat``: :class:`DenseFeatureDistillLoss` to the teacher's dense
  embeddings.

Any combination is set in the config (``loss_decode=None`` in the head trains without
labels). The teacher is frozen and not part of the student: it is built on first use and
never saved in checkpoints. Its dense embeddings come from a dense view
(:mod:`vlkd.seg.dense_views`) of the same augmented images, or from a dense cache of the
training images built before training (:mod:`vlkd.seg.dense_cache`).
"""
from typing import Dict, Optional, Sequence

import torch
from mmengine.dist import barrier, is_main_process
from mmengine.logging import print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import add_prefix
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.teachers import Teacher, build_teacher
from .dense_cache import DenseTeacherCache, cache_key
from .dense_views import build_dense_view
from .pixel_text_head import PixelTextHead
from .zero_shot import REMOVED_LOGIT, teacher_pixels, zero_shot_logits


@MODELS.register_module()
class OpenVocabEncoderDecoder(EncoderDecoder):
    """EncoderDecoder with a pixel-text head and teacher distillation.

    Args:
        teacher: teacher config, needed by the distillation losses.
        pseudo_label_loss: e.g. ``dict(type='PseudoLabelLoss', score_thr=0.5)``, or None.
        pseudo_label_classes: names of the training vocabulary the pseudo labels may take
            (e.g. the unseen classes, when the ground truth labels the others); None: all.
        feature_loss: e.g. ``dict(type='DenseFeatureDistillLoss', mode='l1')``, or None.
        teacher_logit_scale: of the teacher's pixel-text logits (pseudo labels).
        prompt_denoising, key_smoothing: MaskCLIP's refinements of the pseudo labels
            (thresholds, see :mod:`vlkd.teachers.dense_scores`), or None.
        dense: the teacher's dense view, e.g. ``dict(type='EncodeDense', size=256)`` (the
            default, at the images' size) or ``dict(type='SlidingWindowDense')``.
        dense_cache: a directory for the dense maps of the training images, built before
            training by ``BuildDenseTeacherCacheHook`` (only flips and resizing in the
            training pipeline), or None to run the teacher at every step.
        **kwargs: as mmseg's :class:`EncoderDecoder` (backbone, decode_head, neck,
            auxiliary_head, train_cfg, test_cfg, data_preprocessor, init_cfg).
    """

    def __init__(self, teacher: Optional[dict] = None,
                 pseudo_label_loss: Optional[dict] = None,
                 pseudo_label_classes: Optional[Sequence[str]] = None,
                 feature_loss: Optional[dict] = None,
                 teacher_logit_scale: float = 100.0,
                 prompt_denoising: Optional[float] = None,
                 key_smoothing: Optional[float] = None,
                 dense: Optional[dict] = None,
                 dense_cache: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.decode_head, PixelTextHead):
            raise TypeError('OpenVocabEncoderDecoder needs a PixelTextHead decode head, got '
                            f'{type(self.decode_head).__name__}.')
        self.pseudo_label_loss = _build_in_vlkd_scope(pseudo_label_loss)
        self.feature_loss = _build_in_vlkd_scope(feature_loss)
        if (self.pseudo_label_loss or self.feature_loss) is not None and teacher is None:
            raise ValueError('The distillation losses need a teacher: give teacher=dict(...).')
        if self.decode_head.loss_decode is None and self.pseudo_label_loss is None \
                and self.feature_loss is None:
            raise ValueError('Nothing to train: the head has no loss_decode and there is no '
                             'pseudo_label_loss or feature_loss.')
        self.teacher_cfg = teacher
        self.pseudo_label_classes = self._class_mask(pseudo_label_classes)
        self.teacher_logit_scale = teacher_logit_scale
        self.prompt_denoising = prompt_denoising
        self.key_smoothing = key_smoothing
        self.dense_view = build_dense_view(dense)
        self.dense_cache = None if dense_cache is None else DenseTeacherCache(dense_cache)
        if self.dense_cache is not None and key_smoothing is not None:
            raise ValueError('key_smoothing needs attention keys, which the dense cache does '
                             'not store: remove dense_cache or key_smoothing.')
        self.__dict__['_teacher'] = None  # not a submodule: never saved, never optimised

    def _init_decode_head(self, decode_head: dict) -> None:
        # num_classes / out_channels follow the head's active vocabulary (properties below)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners

    def _class_mask(self, names: Optional[Sequence[str]]) -> Optional[Tensor]:
        """(C,) bool over the training vocabulary: True for ``names``."""
        if names is None:
            return None
        vocabulary = self.decode_head.train_classes
        unknown = [n for n in names if n not in vocabulary]
        if isinstance(names, str) or unknown or not names:
            raise ValueError(f'pseudo_label_classes must be names of the training vocabulary '
                             f'{vocabulary}; got {names!r}.')
        return torch.tensor([c in names for c in vocabulary])

    @property
    def num_classes(self) -> int:
        return self.decode_head.num_classes

    @property
    def out_channels(self) -> int:
        return self.decode_head.out_channels

    def set_test_vocabulary(self, classes: Sequence[str],
                            embeddings: Optional[Tensor] = None) -> None:
        """Segment ``classes`` at inference (see :meth:`PixelTextHead.set_test_vocabulary`)."""
        self.decode_head.set_test_vocabulary(classes, embeddings)

    # -- teacher ---------------------------------------------------------------------------
    def teacher(self, device: torch.device) -> Teacher:
        """The frozen teacher on ``device`` (built on first use)."""
        if self._teacher is None:
            print_log(f'Building the teacher {self.teacher_cfg.get("type")} for distillation',
                      logger='current')
            self.__dict__['_teacher'] = build_teacher(self.teacher_cfg)
        if self._teacher.device != device:
            self._teacher.to(device)
        return self._teacher

    @torch.no_grad()
    def teacher_view(self, pixels: Tensor, return_keys: bool = False):
        """(dense (B, D, h, w), keys or None) of RGB pixels in 0..255 by the dense view."""
        return self.dense_view(self.teacher(pixels.device), pixels, return_keys)

    @torch.no_grad()
    def teacher_dense(self, inputs: Tensor, data_samples: list):
        """Teacher dense embeddings (B, D, h, w) of a normalised training batch (from the
        dense cache if there is one), and the attention keys (B, K, h, w) if key
        smoothing needs them (else None)."""
        if self.dense_cache is not None:
            dense, keys = self.dense_cache.get([s.img_path for s in data_samples]), None
            dense = torch.stack([_as_flipped(m, s.metainfo) for m, s in zip(dense, data_samples)])
            dense = dense.to(inputs.device)
        else:
            with_keys = self.pseudo_label_loss is not None and self.key_smoothing is not None
            dense, keys = self.teacher_view(teacher_pixels(inputs, self.data_preprocessor),
                                            with_keys)
        if dense.shape[1] != self.decode_head.embed_dim:
            raise ValueError(f'The teacher gives {dense.shape[1]}-d dense embeddings but the '
                             f'head\'s text embeddings are {self.decode_head.embed_dim}-d: the '
                             'head\'s vocabulary must be embedded by the same teacher.')
        return dense, keys

    def build_dense_cache(self, image_paths: Sequence[str], batch_size: int = 16) -> None:
        """Write the dense cache of ``image_paths`` unless it exists (main process; the
        others wait)."""
        device = next(self.parameters()).device
        teacher = self.teacher(device)
        key = cache_key(teacher.fingerprint, repr(self.dense_view))
        if is_main_process() and not self.dense_cache.check(key):
            print_log(f'Building the dense cache {self.dense_cache.cache_dir} of '
                      f'{len(image_paths)} images with {self.dense_view!r}', logger='current')
            self.dense_cache.build(key, image_paths,
                                   lambda images: self.teacher_view(images.to(device))[0],
                                   batch_size)
        barrier()
        self.dense_cache.check(key)

    # -- training --------------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        features = self.extract_feat(inputs)
        head = self.decode_head
        embeddings = head.embed(features)
        logits = head.classify(embeddings)
        losses = add_prefix(head.loss_by_feat(logits, data_samples), 'decode')
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(features, data_samples))
        if self.pseudo_label_loss is None and self.feature_loss is None:
            return losses

        dense, keys = self.teacher_dense(inputs, data_samples)
        gt_labels = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1)
        distill = {}
        if self.pseudo_label_loss is not None:
            teacher_logits = zero_shot_logits(dense, head.text_embeddings,
                                              self.teacher_logit_scale, self.prompt_denoising,
                                              self.key_smoothing, keys)
            if self.pseudo_label_classes is not None:
                excluded = ~self.pseudo_label_classes.to(teacher_logits.device)
                teacher_logits[:, excluded] = REMOVED_LOGIT
            distill['loss_pseudo'] = self.pseudo_label_loss(logits, teacher_logits, gt_labels)
        if self.feature_loss is not None:
            distill['loss_feat'] = self.feature_loss(embeddings, dense)
        losses.update(add_prefix(distill, 'distill'))
        return losses


def _build_in_vlkd_scope(cfg: Optional[dict]):
    """A vlkd module (a distillation loss) from its config, also inside an mmseg-scoped
    model config (``type='PseudoLabelLoss'`` or ``'vlkd.PseudoLabelLoss'``)."""
    return None if cfg is None else MODELS.build({'_scope_': 'vlkd', **cfg})


def _as_flipped(dense: Tensor, meta: dict) -> Tensor:
    """A cached map (D, h, w) of an original image, flipped as the sample's image was."""
    if not meta.get('flip', False):
        return dense
    direction = meta.get('flip_direction', 'horizontal')
    if direction not in ('horizontal', 'vertical'):
        raise ValueError(f'The dense cache supports horizontal and vertical flips, not '
                         f'{direction!r}.')
    return dense.flip(-1 if direction == 'horizontal' else -2)
