"""Contrastive tasks: they define the joint embedding space that zero-shot classification,
retrieval and the teachers use.

- :class:`ImageTextContrastTask` (CLIP, ALBEF's and VLMo's ITC): projections of the
  unimodal summary features (or the towers' own projected embeddings) and InfoNCE.
- :class:`MomentumContrastTask` (ALBEF): the same space, trained against the momentum
  model's features and queues with distilled targets.
- :class:`ImageTextLabelContrastTask` (UniCL): every pair with the same class label is a
  positive.
- :class:`FDTContrastTask` (FDT): representations as sparse mixtures of shared tokens.
"""
import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.vlp.encoders import EncoderOutput
from vlkd.vlp.momentum import FeatureQueue
from vlkd.vlp.objectives import FDTContrastiveLoss
from .base import PretrainingStep, PretrainingTask


class _JointSpaceTask(PretrainingTask):
    """A learnable log logit scale, initialised to ``log(1 / init_temperature)``."""

    joint_space = True

    def __init__(self, init_temperature: float = 0.07, weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        if init_temperature <= 0:
            raise ValueError(f'init_temperature must be positive, got {init_temperature}')
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))


@MODELS.register_module()
class ImageTextContrastTask(_JointSpaceTask):
    """Image-text contrast between linear projections of the unimodal ``cls`` features.

    Args:
        backbone: the model's backbone (its widths size the projections).
        embed_dim: size E of the joint space; None uses the towers' own projected
            ``embedding`` (CLIP towers) instead of new projections.
        loss: the contrastive loss, called ``loss(image, text, log_scale)``.
        init_temperature: initial softmax temperature (CLIP: 0.07).
        text_pool: what the text projection reads: ``'cls'`` (the encoder's summary
            feature) or ``'mean'`` (the mean of the valid tokens; a freshly initialised
            post-LayerNorm BERT gives nearly the same [CLS] for every caption, and its mean
            token starts the alignment sooner).
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, embed_dim: Optional[int] = None,
                 loss: dict = dict(type='ImageTextContrastiveLoss'),
                 init_temperature: float = 0.07, text_pool: str = 'cls', weight: float = 1.0,
                 stages=None):
        super().__init__(init_temperature, weight, stages)
        if text_pool not in ('cls', 'mean'):
            raise ValueError(f"text_pool must be 'cls' or 'mean', got {text_pool!r}")
        self.text_pool = text_pool
        self.embed_dim = embed_dim
        self.image_projection = self.text_projection = None
        if embed_dim is not None:
            self.image_projection = nn.Linear(backbone.image_width, embed_dim)
            self.text_projection = nn.Linear(backbone.text_width, embed_dim)
        self.loss = MODELS.build(loss)

    @staticmethod
    def _project(encoded: EncoderOutput, projection: Optional[nn.Linear], what: str,
                 pool: str = 'cls') -> Tensor:
        if projection is not None:
            if pool == 'mean':
                weights = encoded.mask.to(encoded.tokens.dtype)[..., None]
                return projection((encoded.tokens * weights).sum(1) / weights.sum(1))
            return projection(encoded.cls)
        if encoded.embedding is None:
            raise ValueError(f'The {what} encoder gives no projected embedding: set embed_dim '
                             'of the contrastive task to project its cls features.')
        return encoded.embedding

    def embed_image(self, encoded: EncoderOutput) -> Tensor:
        """(B, E) joint-space features of an image encoder output."""
        return self._project(encoded, self.image_projection, 'image')

    def embed_text(self, encoded: EncoderOutput) -> Tensor:
        """(B, E) joint-space features of a text encoder output."""
        return self._project(encoded, self.text_projection, 'text', self.text_pool)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        image, text = step.joint_features()
        return dict(loss=self.loss(image, text, self.logit_scale),
                    logit_scale=self.logit_scale.detach().exp())


@MODELS.register_module()
class MomentumContrastTask(ImageTextContrastTask):
    """ALBEF's ITC: online features against the momentum model's features of the batch and
    of two queues, targets mixed with the momentum model's similarities (weight alpha).

    Args:
        embed_dim: size E of the joint space (the queues hold E-d momentum features).
        queue_size: momentum features kept per modality (ALBEF: 65536).
        loss: :class:`vlkd.vlp.MomentumContrastiveLoss` arguments.
        Others as :class:`ImageTextContrastTask`.
    """

    needs_momentum = True

    def __init__(self, backbone, embed_dim: int, queue_size: int = 4096,
                 loss: dict = dict(type='MomentumContrastiveLoss'),
                 init_temperature: float = 0.07, text_pool: str = 'cls', weight: float = 1.0,
                 stages=None):
        super().__init__(backbone, embed_dim, loss, init_temperature, text_pool, weight, stages)
        self.image_queue = FeatureQueue(queue_size, embed_dim)
        self.text_queue = FeatureQueue(queue_size, embed_dim)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        image, text = step.joint_features()
        with torch.no_grad():
            momentum_image, momentum_text = step.momentum.joint_features()
        loss = self.loss(image, text, momentum_image, momentum_text, self.logit_scale,
                         step.alpha, image_queue=self.image_queue.snapshot(),
                         text_queue=self.text_queue.snapshot())
        if self.training:
            self.image_queue.enqueue(F.normalize(momentum_image, dim=-1))
            self.text_queue.enqueue(F.normalize(momentum_text, dim=-1))
        return dict(loss=loss, logit_scale=self.logit_scale.detach().exp())


@MODELS.register_module()
class ImageTextLabelContrastTask(ImageTextContrastTask):
    """UniCL: image-text contrast where every pair sharing a class label is a positive
    (labelled crops with class-name prompts and free captions in one space; a pair without
    a label is only its own positive)."""

    def __init__(self, backbone, embed_dim: Optional[int] = None,
                 loss: dict = dict(type='ImageTextLabelContrastiveLoss'),
                 init_temperature: float = 0.07, text_pool: str = 'cls', weight: float = 1.0,
                 stages=None):
        super().__init__(backbone, embed_dim, loss, init_temperature, text_pool, weight, stages)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        image, text = step.joint_features()
        return dict(loss=self.loss(image, text, step.pair_labels(), self.logit_scale),
                    logit_scale=self.logit_scale.detach().exp())


@MODELS.register_module()
class FDTContrastTask(_JointSpaceTask):
    """FDT: image and text as weighted sums of shared learnable tokens (weights: sparsemax
    or softmax of each token's best-matching patch / word), trained with InfoNCE.

    Args:
        num_tokens: C, number of shared tokens; token_dim: their size (the joint space).
        normalization: ``'sparsemax'`` or ``'softmax'``.
        itc: arguments of the InfoNCE loss (:class:`ImageTextContrastiveLoss`).
        Others as :class:`ImageTextContrastTask`.
    """

    def __init__(self, backbone, num_tokens: int, token_dim: int,
                 normalization: str = 'sparsemax', itc: Optional[dict] = None,
                 init_temperature: float = 0.07, weight: float = 1.0, stages=None):
        super().__init__(init_temperature, weight, stages)
        self.fdt = FDTContrastiveLoss(backbone.image_width, backbone.text_width, num_tokens,
                                      token_dim, normalization, itc)

    def embed_image(self, encoded: EncoderOutput) -> Tensor:
        return self.fdt.encode_image(encoded.tokens, encoded.mask)

    def embed_text(self, encoded: EncoderOutput) -> Tensor:
        return self.fdt.encode_text(encoded.tokens, encoded.mask)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        image, text = step.joint_features()
        return dict(loss=self.fdt.itc(image, text, self.logit_scale),
                    logit_scale=self.logit_scale.detach().exp())
