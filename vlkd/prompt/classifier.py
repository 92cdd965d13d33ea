"""PromptClassifier: the base of every adaptation method, a frozen teacher turned into an
image classifier over class names.

Subclasses implement :meth:`PromptClassifier.logits` (scores of images against a
vocabulary) with their learnable parts: prompts, adapters, caches. The base does the rest:

- the teacher is built from its config and frozen. It is a submodule (it moves with the
  model, and its frozen weights get no gradients), but it is left out of the
  ``state_dict``: checkpoints hold only what was learned, and loading one fills the
  teacher's entries from the teacher the config builds. Checkpoints record the teacher's
  fingerprint and the class names; loading one into a model with another teacher or other
  classes is an error that says so. ``init_weights`` leaves the teacher alone.
- ``classes``: the training vocabulary (the labels of the training set, in order);
  ``test_classes``: the vocabulary of ``predict`` (default: ``classes``), e.g. base and
  novel classes for base-to-novel generalisation.
- data: the pipeline packs uint8 BGR images; the default data preprocessor turns them into
  float RGB in 0..255 and the model resizes to the teacher's input side and normalises the
  teacher's way (any teacher, no per-teacher preprocessing config).

Modes: ``'loss'`` cross-entropy over ``classes`` (``loss_ce``; ``train_top1`` is logged);
``'predict'`` data samples with ``pred_score`` (logits over ``test_classes``),
``pred_label`` and the vocabulary as ``score_classes`` (metainfo); ``'tensor'`` the logits
(B, C_test).
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from vlkd.datasets.class_vocabulary import ClassSpec, resolve_classes
from vlkd.teachers import build_teacher, resolve_templates
from .backbones import PromptBackbone, prompt_backbone

__all__ = ['PromptClassifier', 'ClassVocabularyError']

DEFAULT_LOGIT_SCALE = 100.0  # CLIP's learned temperature saturates here


class ClassVocabularyError(ValueError):
    """A checkpoint, a dataset or a vocabulary does not fit the model's classes."""


def _drop_teacher_weights(module, state_dict, prefix, local_metadata):
    """State-dict hook: the frozen teacher's entries are not saved (module doc)."""
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


class PromptClassifier(BaseModel):
    """Base of the adaptation methods (see the module doc).

    Args:
        teacher: teacher config (``dict(type='VLKDTeacher', checkpoint=...)``, any type of
            :mod:`vlkd.teachers`) or a built Teacher.
        classes: training vocabulary: a list of names, a class-name file, or
            ``dict(file=..., subset='base' | 'novel' | 'all')``
            (:func:`vlkd.datasets.class_vocabulary.resolve_classes`).
        test_classes: vocabulary of ``predict``; None: ``classes``.
        templates: templates of the fixed text classifier of methods that do not learn
            text prompts; None: the teacher's default.
        logit_scale: temperature multiplying cosine similarities; None: the teacher's
            learned one if it has one, else 100.
    """

    method_name = 'PromptClassifier'
    learns_text_prompts = False

    def __init__(self, teacher: Union[dict, object], classes: ClassSpec,
                 test_classes: Optional[ClassSpec] = None,
                 templates: Optional[Union[str, Sequence[str]]] = None,
                 logit_scale: Optional[float] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor', bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.teacher = build_teacher(teacher)
        self._register_state_dict_hook(_drop_teacher_weights)
        self.backbone: PromptBackbone = prompt_backbone(self.teacher)
        self.classes = resolve_classes(classes, 'classes')
        self.test_classes = self.classes if test_classes is None else \
            resolve_classes(test_classes, 'test_classes')
        self.templates = self.teacher.templates if templates is None else \
            resolve_templates(templates)
        if logit_scale is None:
            logit_scale = self.backbone.logit_scale or DEFAULT_LOGIT_SCALE
        if logit_scale <= 0:
            raise ValueError(f'logit_scale must be positive, got {logit_scale}')
        self.logit_scale = float(logit_scale)

    # -- to be implemented -------------------------------------------------------------
    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        """Logits (B, C) of teacher-normalised pixels (B, 3, S, S) against ``names``."""
        raise NotImplementedError

    def class_embeddings(self, names: Sequence[str]) -> Tensor:
        """L2-normalised text embeddings (C, D) of ``names`` under the learned prompts,
        for students that classify by class embeddings (``tools/embed_text.py``)."""
        raise ClassVocabularyError(
            f'{self.method_name} learns no text prompts: its text side is the teacher\'s '
            'template embeddings. Embed the vocabulary with templates instead: '
            'python tools/embed_text.py --teacher ... --classes ...')

    # -- the frozen teacher ------------------------------------------------------------
    def init_weights(self) -> None:
        """Initialise the learnable parts; the teacher keeps its weights."""
        teacher = self._modules.pop('teacher')
        try:
            super().init_weights()
        finally:
            self._modules['teacher'] = teacher

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints leave the teacher out: its entries come from the teacher built here
        for key, value in self.teacher.state_dict(prefix=prefix + 'teacher.').items():
            state_dict.setdefault(key, value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def device(self) -> torch.device:
        return self.teacher.device

    def teacher_pixels(self, inputs: Tensor) -> Tensor:
        """Float RGB images (B, 3, H, W) in 0..255, resized to the teacher's input side and
        normalised with its mean / std."""
        teacher = self.teacher
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise ValueError(f'inputs must be (B, 3, H, W) RGB images, got {tuple(inputs.shape)}')
        pixels = inputs.to(self.device, torch.float32)
        size = (teacher.image_size, teacher.image_size)
        if pixels.shape[-2:] != size:
            pixels = F.interpolate(pixels, size=size, mode='bilinear', align_corners=False,
                                   antialias=True)
        return (pixels - teacher.pixel_mean) / teacher.pixel_std

    @torch.no_grad()
    def image_embeddings(self, pixels: Tensor) -> Tensor:
        """The frozen teacher's L2-normalised image embeddings (B, D)."""
        return F.normalize(self.backbone.image_features(pixels).float(), dim=-1)

    def template_embeddings(self, names: Sequence[str]) -> Tensor:
        """The teacher's prompt-ensembled class embeddings (C, D) with ``templates``
        (cached on disk by the teacher)."""
        return self.teacher.encode_class_names(list(names), self.templates)

    def scaled(self, image_embeddings: Tensor, class_embeddings: Tensor) -> Tensor:
        """``logit_scale`` times the cosine similarities (B, C) of unit vectors."""
        return self.logit_scale * image_embeddings @ class_embeddings.t().to(image_embeddings)

    # -- vocabularies ------------------------------------------------------------------
    def class_indices(self, names: Sequence[str]) -> List[int]:
        """Positions of ``names`` in ``classes``, for class-specific parts; an error names
        the classes the model was not trained on."""
        unknown = [n for n in names if n not in self.classes]
        if unknown:
            raise ClassVocabularyError(
                f'{self.method_name} has class-specific parameters for its {len(self.classes)} '
                f'training classes only; it cannot score {unknown[:10]}. Evaluate it on its '
                'training classes, or use a method whose prompts are shared by all classes.')
        return [self.classes.index(n) for n in names]

    # -- checkpoints -------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        return dict(method=type(self).__name__, classes=list(self.classes),
                    teacher_fingerprint=self.teacher.fingerprint)

    def set_extra_state(self, state: dict) -> None:
        if not isinstance(state, dict) or 'classes' not in state:
            raise ClassVocabularyError(f'The checkpoint has no class record for '
                                       f'{type(self).__name__}: was it written by vlkd.prompt?')
        stored = list(state['classes'])
        if stored != list(self.classes):
            missing = [c for c in self.classes if c not in stored]
            extra = [c for c in stored if c not in self.classes]
            raise ClassVocabularyError(
                f'The checkpoint was trained on {len(stored)} classes, the model is configured '
                f'for {len(self.classes)}'
                + (f'; not in the checkpoint: {missing[:10]}' if missing else '')
                + (f'; only in the checkpoint: {extra[:10]}' if extra else '')
                + ('' if missing or extra else ' (same names in another order)')
                + '. Set the model\'s classes to the training vocabulary of the checkpoint; '
                'evaluate on other classes through test_classes.')
        if state.get('method', type(self).__name__) != type(self).__name__:
            raise ClassVocabularyError(f"The checkpoint holds a {state['method']} model, the "
                                       f'config builds a {type(self).__name__}.')
        fingerprint = state.get('teacher_fingerprint')
        if fingerprint is not None and fingerprint != self.teacher.fingerprint:
            raise ClassVocabularyError(
                f'The checkpoint was trained with teacher {fingerprint[:12]}, the config builds '
                f'teacher {self.teacher.fingerprint[:12]}: the learned parts only fit the '
                'teacher they were trained with.')

    # -- mmengine ----------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.logits(self.teacher_pixels(inputs), self.test_classes)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def labels(self, data_samples: Sequence[BaseDataElement]) -> Tensor:
        """(B,) ``gt_label`` of the samples, checked to index ``classes``."""
        missing = [i for i, s in enumerate(data_samples) if 'gt_label' not in s]
        if missing:
            raise ValueError(f'Training samples {missing[:5]} have no gt_label: train on a '
                             'labelled dataset (FewShotDataset, ImageFolderDataset, '
                             'ShapesObjectCropDataset).')
        labels = torch.stack([torch.as_tensor(s.gt_label).reshape(()) for s in data_samples])
        if labels.min() < 0 or labels.max() >= len(self.classes):
            raise ClassVocabularyError(
                f'A training label is {int(labels.max())}, but the model has '
                f'{len(self.classes)} classes: the training set and the model\'s classes '
                'must be the same vocabulary.')
        return labels.to(self.device)

    def loss(self, inputs: Tensor, data_samples: List[BaseDataElement]) -> dict:
        labels = self.labels(data_samples)
        logits = self.logits(self.teacher_pixels(inputs), self.classes)
        accuracy = (logits.argmax(dim=1) == labels).float().mean() * 100
        return dict(loss_ce=F.cross_entropy(logits, labels), train_top1=accuracy.detach())

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[BaseDataElement]] = None) -> List[BaseDataElement]:
        scores = self.logits(self.teacher_pixels(inputs), self.test_classes).detach()
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(scores))]
        names = tuple(self.test_classes)
        for sample, score in zip(data_samples, scores):
            sample.set_metainfo(dict(score_classes=names))
            sample.pred_score = score
            sample.pred_label = score.argmax()
        return data_samples
