"""VLPModel: a backbone and the pretraining objectives named in the config, trained by mmengine.

A recipe (``configs/pretrain/*.py``) is one VLPModel config::

    model = dict(
        type='VLPModel',
        image_encoder=dict(type='ViTPatchEncoder', ...),      # or a region / video encoder
        text_encoder=dict(type='BertTextEncoder', ...),
        fusion=dict(type='CrossAttentionFusion', ...),        # optional
        objectives=dict(                                      # name -> task, weighted
            itc=dict(type='MomentumContrastTask', embed_dim=128),
            itm=dict(type='ImageTextMatchingTask', hard_negatives=True),
            mlm=dict(type='MaskedLanguageTask', distill=True, weight=1.0)),
        momentum=dict(momentum=0.995, alpha=0.4, ramp_iters=500),  # optional (ALBEF)
        zero_shot=dict(classes=[...], templates='shapes'))

(``backbone=dict(type='MoMEBackbone', ...)`` replaces the encoders and the fusion for VLMo.)
Each objective is a task of :mod:`vlkd.vlp.tasks`; ``loss()`` builds one
:class:`~vlkd.vlp.tasks.PretrainingStep` per batch and runs the tasks of the current stage
on it, so only the forward passes they need are run, each once. Losses are logged as
``loss_<name>`` (summed by mmengine), other outputs as ``<name>_<key>``.

Inputs: ``inputs`` after the data preprocessor (images (B, 3, S, S) normalised, a
:class:`~vlkd.vlp.encoders.RegionBatch` or a :class:`~vlkd.vlp.views.VideoBatch`) and data
samples with ``text`` (every sample) and optionally ``unicl_label`` / ``gt_label`` (pairs
with equal labels match: image-text-label contrast, and no such pair is an ITM negative).

The joint embedding space (``encode_image`` / ``encode_text``, zero-shot by embeddings,
retrieval, teachers) is the one of the contrastive task; recipes without one classify
zero-shot by a task that scores image-text pairs (ITM, PrefixLM likelihood).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from vlkd.registry import MODELS
from .clip_model import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, _plain, set_retrieval_fields
from .momentum import MomentumModel, ramped_alpha
from .tasks import ImageTextMatchingTask, PretrainingStep, PretrainingTask
from .views import TextView, Visual, VisualView, visual_batch_size


def _texts(data_samples: Sequence[BaseDataElement]) -> List[str]:
    texts = []
    for index, sample in enumerate(data_samples):
        text = sample.get('text')
        if not isinstance(text, str) or not text.strip():
            img = sample.get('img_path', sample.get('img_id', '?'))
            raise ValueError(f'Sample {index} of the batch (image {img}) has no caption '
                             f'(text={text!r}); every image-text pair needs one.')
        texts.append(text)
    return texts


def _pair_labels(data_samples: Sequence[BaseDataElement], device) -> Optional[Tensor]:
    """(B,) labels such that pairs with equal labels match each other: ``unicl_label`` if
    every sample has one (vlkd-shapes: the class of a crop, the image of a scene), else
    ``gt_label``; -1 where a sample has none; None if no sample has one."""
    key = 'unicl_label' if all('unicl_label' in s for s in data_samples) else 'gt_label'
    labels = [int(s.get(key)) if key in s else -1 for s in data_samples]
    if all(label < 0 for label in labels):
        return None
    return torch.tensor(labels, device=device)


@MODELS.register_module()
class VLPModel(BaseModel):
    """Vision-language pretraining: a backbone plus weighted objectives (see module doc).

    Args:
        image_encoder, text_encoder, fusion: configs of an
            :class:`~vlkd.vlp.backbone.EncoderFusionBackbone`; or
        backbone: a backbone config (e.g. ``MoMEBackbone``).
        objectives: ``{name: task config}``; every task takes ``weight`` (factor of its
            losses) and ``stages`` (the pretraining stages it runs in).
        momentum: ``dict(momentum=0.995, alpha=0.4, ramp_iters=0)``: an EMA copy of the
            backbone and the tasks, for tasks that distil from it; alpha ramps up linearly
            over ``ramp_iters`` training steps.
        joint_space: name of the task that defines the joint embedding space, if several
            could (default: the only one).
        zero_shot: ``dict(classes=[...], templates='shapes', scorer=None)`` for
            ``mode='predict'``; ``scorer`` names the task that scores image-text pairs or
            classes when there is no joint space (default: the only such task).
        stage: initial pretraining stage (VLMo; :class:`~vlkd.vlp.fusion.VLMoStageHook`
            switches it during training).
        data_preprocessor: default ``HostBatchImgDataPreprocessor`` (mmengine's
            ImgDataPreprocessor, one copy per batch) with the CLIP mean / std (0-255) and
            BGR -> RGB.
    """

    def __init__(self, objectives: Dict[str, dict], image_encoder: Optional[dict] = None,
                 text_encoder: Optional[dict] = None, fusion: Optional[dict] = None,
                 backbone: Optional[dict] = None, momentum: Optional[dict] = None,
                 joint_space: Optional[str] = None, zero_shot: Optional[dict] = None,
                 stage: Optional[str] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='vlkd.HostBatchImgDataPreprocessor',
                                     mean=CLIP_PIXEL_MEAN, std=CLIP_PIXEL_STD, bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(self._backbone_cfg(backbone, image_encoder, text_encoder,
                                                        fusion))
        if not objectives:
            raise ValueError('objectives is empty: name at least one pretraining task, e.g. '
                             "objectives=dict(itc=dict(type='ImageTextContrastTask')).")
        tasks = {}
        for name, cfg in objectives.items():
            task = MODELS.build(cfg, default_args=dict(backbone=self.backbone))
            if not isinstance(task, PretrainingTask):
                raise TypeError(f'objectives.{name} built a {type(task).__name__}, not a '
                                'pretraining task of vlkd.vlp.tasks.')
            task.name = name
            tasks[name] = task
        self.tasks = nn.ModuleDict(tasks)
        self.joint_space = self._pick(joint_space, 'joint_space',
                                      [n for n, t in tasks.items() if t.joint_space])
        self.momentum = None
        self.alpha = self.ramp_iters = 0
        if momentum is not None:
            momentum = dict(momentum)
            self.alpha = momentum.pop('alpha', 0.4)
            self.ramp_iters = momentum.pop('ramp_iters', 0)
            self.momentum = MomentumModel(self._parts(), **momentum)
        needing = [n for n, t in tasks.items() if t.needs_momentum]
        if needing and self.momentum is None:
            raise ValueError(f'objectives {needing} distil from the momentum model: set '
                             'momentum=dict(momentum=0.995, alpha=0.4).')
        # training steps taken (the alpha ramp); saved and resumed with the weights
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))
        self.stage = stage
        self.zero_shot = self._check_zero_shot(_plain(zero_shot))

    # -- construction --------------------------------------------------------------------
    @staticmethod
    def _backbone_cfg(backbone, image_encoder, text_encoder, fusion) -> dict:
        if backbone is not None:
            if image_encoder is not None or text_encoder is not None or fusion is not None:
                raise ValueError('Give either backbone=dict(...) or image_encoder / '
                                 'text_encoder / fusion, not both.')
            return backbone
        if image_encoder is None or text_encoder is None:
            raise ValueError('VLPModel needs image_encoder and text_encoder (and optionally '
                             'fusion), or a backbone config.')
        return dict(type='EncoderFusionBackbone', image_encoder=image_encoder,
                    text_encoder=text_encoder, fusion=fusion)

    @staticmethod
    def _pick(name: Optional[str], what: str, candidates: List[str]) -> Optional[str]:
        if name is not None:
            if name not in candidates:
                raise ValueError(f'{what}={name!r} is not one of the objectives that can '
                                 f'serve: {candidates}.')
            return name
        if len(candidates) > 1:
            raise ValueError(f'Objectives {candidates} could each serve as {what}: name one '
                             f'with {what}=...')
        return candidates[0] if candidates else None

    def _check_zero_shot(self, zero_shot: Optional[dict]) -> Optional[dict]:
        if zero_shot is None:
            return None
        unknown = set(zero_shot) - {'classes', 'templates', 'scorer'}
        if unknown or 'classes' not in zero_shot:
            raise ValueError("zero_shot must be dict(classes=[...], templates=..., "
                             f'scorer=None), got keys {sorted(zero_shot)}.')
        zero_shot.setdefault('templates', 'photo')
        scorer = zero_shot.get('scorer')
        if self.joint_space is None or scorer is not None:
            scorers = [n for n, t in self.tasks.items()
                       if hasattr(t, 'score_pairs') or hasattr(t, 'class_scores')]
            if scorer is None and not scorers:
                raise ValueError('zero_shot needs a joint embedding space (a contrastive '
                                 'objective) or an objective that scores image-text pairs '
                                 '(ITM, PrefixLM) or classes (grounding).')
            zero_shot['scorer'] = self._pick(scorer, 'zero_shot.scorer', scorers)
        return zero_shot

    def _parts(self) -> nn.ModuleDict:
        """The trained parts that the momentum model copies."""
        return nn.ModuleDict(dict(backbone=self.backbone, tasks=self.tasks))

    def set_pretraining_stage(self, stage: Optional[str]) -> None:
        """Run the tasks of ``stage`` from now on (called by VLMoStageHook)."""
        if not any(task.runs_in(stage) for task in self.tasks.values()):
            raise ValueError(f'No objective runs in stage {stage!r}: give the objectives '
                             "stages=('...',) that include it.")
        self.stage = stage

    # -- steps and losses ----------------------------------------------------------------
    def make_step(self, inputs: Visual, data_samples: Sequence[BaseDataElement]
                  ) -> PretrainingStep:
        """The :class:`PretrainingStep` of a preprocessed batch."""
        texts = _texts(data_samples)
        if visual_batch_size(inputs) != len(texts):
            raise ValueError(f'{visual_batch_size(inputs)} visual inputs but '
                             f'{len(texts)} data samples.')
        tokens = self.backbone.tokenize(texts)
        alpha = ramped_alpha(int(self.steps), self.alpha, self.ramp_iters)
        return PretrainingStep(self._parts(), inputs, tokens, texts,
                               _pair_labels(data_samples, self.steps.device), alpha,
                               self.joint_space,
                               None if self.momentum is None else self.momentum.module,
                               samples=data_samples)

    def loss(self, inputs: Visual, data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        if self.training and self.momentum is not None:
            self.momentum.update(self._parts())  # after the previous optimiser step
        step = self.make_step(inputs, data_samples)
        losses = {}
        for name, task in self.tasks.items():
            if not task.runs_in(self.stage):
                continue
            for key, value in task(step).items():
                if key.startswith('loss'):
                    losses[f'loss_{name}{key[4:]}'] = task.weight * value
                else:
                    losses[f'{name}_{key}'] = value
        if not losses:
            raise ValueError(f'No objective runs in stage {self.stage!r}.')
        if self.training:
            self.steps += 1
        return losses

    # -- the joint space -----------------------------------------------------------------
    def _joint_task(self) -> PretrainingTask:
        if self.joint_space is None:
            raise ValueError(f'This recipe (objectives {list(self.tasks)}) has no joint '
                             'image-text embedding space: it needs a contrastive objective '
                             '(ImageTextContrastTask, MomentumContrastTask, FDTContrastTask, '
                             'ImageTextLabelContrastTask) to embed images and texts apart.')
        return self.tasks[self.joint_space]

    @property
    def image_size(self) -> Optional[int]:
        """Square pixel input side of the image tower (None for region / video inputs)."""
        return self.backbone.image_size

    def encode_image(self, inputs: Visual) -> Tensor:
        """L2-normalised joint-space embeddings (B, E) of preprocessed visual inputs."""
        task = self._joint_task()
        return F.normalize(task.embed_image(self.backbone.encode_image(inputs)), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised joint-space embeddings (N, E) of strings."""
        task = self._joint_task()
        tokens = self.backbone.tokenize(texts)
        encoded = self.backbone.encode_text(tokens['input_ids'], tokens['attention_mask'])
        return F.normalize(task.embed_text(encoded), dim=-1)

    # -- prediction ----------------------------------------------------------------------
    def _prompts(self) -> List[str]:
        from vlkd.teachers.templates import fill_template, resolve_templates
        templates = resolve_templates(self.zero_shot['templates'])
        return [fill_template(t, name) for name in self.zero_shot['classes'] for t in templates]

    def class_embeddings(self) -> Tensor:
        """(C, E) prompt-ensembled embeddings of the ``zero_shot`` class names."""
        # imported here: vlkd.teachers builds on vlkd.vlp
        from vlkd.teachers.templates import prompt_ensemble, resolve_templates
        return prompt_ensemble(self.encode_text, self.zero_shot['classes'],
                               resolve_templates(self.zero_shot['templates']))

    def pair_scores(self, inputs: Visual, texts: Sequence[str], scorer: str,
                    chunk: int = 1024) -> Tensor:
        """(B, T) scores of every visual input with every text by the task ``scorer``."""
        task = self.tasks[scorer]
        image = VisualView(self.backbone, inputs)
        text = TextView(self.backbone, **self.backbone.tokenize(texts))
        image.encoded, text.encoded  # noqa: B018  (each input encoded once, rows selected)
        batch, count = len(image), len(text)
        device = text.input_ids.device
        image_index = torch.arange(batch, device=device).repeat_interleave(count)
        text_index = torch.arange(count, device=device).repeat(batch)
        scores = [task.score_pairs(self.backbone, image.select(image_index[i:i + chunk]),
                                   text.select(text_index[i:i + chunk]))
                  for i in range(0, batch * count, chunk)]
        return torch.cat(scores).view(batch, count)

    def zero_shot_scores(self, inputs: Visual) -> Tensor:
        """(B, C) class scores: cosine similarity to the class embeddings, the scorer's
        class scores (grounding), or its pair scores averaged over the templates."""
        if self.zero_shot is None:
            raise ValueError("mode='predict' classifies by class names: build VLPModel with "
                             "zero_shot=dict(classes=[...], templates='shapes').")
        scorer = self.zero_shot.get('scorer')
        if scorer is None:
            return self.encode_image(inputs) @ self.class_embeddings().T
        task = self.tasks[scorer]
        if hasattr(task, 'class_scores'):
            return task.class_scores(self.backbone, VisualView(self.backbone, inputs),
                                     self.zero_shot['classes'])
        scores = self.pair_scores(inputs, self._prompts(), scorer)
        return scores.view(len(scores), len(self.zero_shot['classes']), -1).mean(dim=-1)

    def predict(self, inputs: Visual, data_samples: Optional[List[BaseDataElement]] = None
                ) -> List[BaseDataElement]:
        """Data samples with what the recipe can give (the fields vlkd's metrics read):

        - joint space: ``image_embedding`` (E,); ``text_embedding`` (E,) of the sample's
          ``text`` and ``text_embeddings`` (M, E) of all its ``texts`` (retrieval);
        - an ITM objective: ``itm_logits`` and ``itm_labels``, of the sample's own pair (1)
          and, if it has a ``negative_text``, of the image with that text (0);
        - ``zero_shot``: ``pred_score`` (C,) and ``pred_label``.
        """
        batch = visual_batch_size(inputs)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(batch)]
        has_text = all(isinstance(s.get('text'), str) for s in data_samples)
        if self.joint_space is not None:
            set_retrieval_fields(data_samples, self.encode_image(inputs), self.encode_text)
        matching = [t for t in self.tasks.values() if isinstance(t, ImageTextMatchingTask)]
        if matching and has_text:
            self._predict_matching(matching[0], inputs, data_samples)
        if self.zero_shot is not None:
            for sample, score in zip(data_samples, self.zero_shot_scores(inputs)):
                sample.pred_score = score
                sample.pred_label = score.argmax()
        return data_samples

    def _predict_matching(self, task: PretrainingTask, inputs: Visual,
                          data_samples: List[BaseDataElement]) -> None:
        image = VisualView(self.backbone, inputs)
        columns = [[s.text] + ([s.negative_text] if 'negative_text' in s else [])
                   for s in data_samples]
        texts = [t for row in columns for t in row]
        index = torch.cat([torch.full((len(row),), i) for i, row in enumerate(columns)])
        text = TextView(self.backbone, **self.backbone.tokenize(texts))
        logits = task.score_pairs(self.backbone, image.select(index.to(text.input_ids.device)),
                                  text)
        for sample, row, values in zip(data_samples, columns,
                                       logits.split([len(r) for r in columns])):
            sample.itm_logits = values
            sample.itm_labels = torch.tensor([1] + [0] * (len(row) - 1))

    def forward(self, inputs: Visual, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[dict, list, tuple, Tensor]:
        """``mode='loss'``: dict of losses; ``'predict'``: see :meth:`predict`;
        ``'tensor'``: joint-space image embeddings (B, E), and text embeddings (B, E) if the
        samples carry ``text``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            images = self.encode_image(inputs)
            if data_samples is None or 'text' not in data_samples[0]:
                return images
            return images, self.encode_text([s.text for s in data_samples])
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

