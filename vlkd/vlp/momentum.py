"""Momentum distillation (ALBEF): an EMA copy of the model teaches the model.

- :class:`MomentumModel`: an exponential moving average of a module's parameters,
  ``theta_m <- m theta_m + (1 - m) theta`` (``m = 0.995``), updated once per optimiser
  step and never trained by gradient. Its outputs are pseudo-targets that are less noisy
  than the web captions: they can credit a text that describes the image well although it
  is not the image's own caption.
- Soft targets: for ITC, the softmax of the momentum model's similarities
  (:class:`MomentumContrastiveLoss`); for MLM, the momentum model's token distribution (pass
  it as ``soft_targets`` to :class:`.objectives.MaskedLanguageModelingLoss`). Both objectives
  train on ``(1 - alpha) * hard + alpha * soft`` targets, i.e. the cross-entropy
  ``(1 - alpha) CE(hard) + alpha CE(soft)``, with ``alpha`` ramped up from 0 over the first
  epoch (:func:`ramped_alpha`).
- :class:`FeatureQueue`: a fixed-size FIFO of past momentum features (from every process
  under ``torch.distributed``) that adds negatives to the contrastive loss.
"""
import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.vlp.objectives.distributed import gather_no_grad, world


class MomentumModel(nn.Module):
    """A frozen copy of ``module`` that follows it by exponential moving average.

    Call :meth:`update` once per optimiser step (ALBEF does it at the start of each training
    forward, which applies it after the previous step). Buffers (e.g. BatchNorm statistics)
    are copied, not averaged. The copy is part of the state dict, so it resumes with the
    model.

    Args:
        module: the online module; it is deep-copied.
        momentum: m, the weight of the old average (ALBEF: 0.995).
    """

    def __init__(self, module: nn.Module, momentum: float = 0.995):
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.momentum = momentum
        self.module = copy.deepcopy(module)
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module) -> None:
        """``theta_m <- m theta_m + (1 - m) theta`` for every parameter of ``online``."""
        averaged = dict(self.module.named_parameters())
        current = dict(online.named_parameters())
        if averaged.keys() != current.keys():
            missing = sorted(averaged.keys() ^ current.keys())[:5]
            raise ValueError('the online module does not have the parameters of the momentum '
                             f'copy (differing names: {missing})')
        for name, parameter in current.items():
            averaged[name].lerp_(parameter.detach(), 1.0 - self.momentum)
        online_buffers = dict(online.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(online_buffers[name])

    def forward(self, *args, **kwargs):
        """The momentum copy's outputs, without gradient."""
        with torch.no_grad():
            return self.module(*args, **kwargs)


def ramped_alpha(iteration: int, alpha: float = 0.4, ramp_iters: int = 0) -> float:
    """Distillation weight at ``iteration``: ``alpha * min(1, iteration / ramp_iters)``
    (ALBEF: alpha 0.4 ramped over the first epoch); ``alpha`` when ``ramp_iters`` is 0."""
    if ramp_iters <= 0:
        return alpha
    return alpha * min(1.0, iteration / ramp_iters)


class FeatureQueue(nn.Module):
    """FIFO of the last ``size`` feature rows enqueued (by all processes).

    The rows and the write position are buffers, so they are saved and resumed with the
    model. Until it is full, only the rows written so far are returned.

    Args:
        size: number of rows kept.
        dim: size of a row.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f'a queue needs size >= 1 and dim >= 1, got {size}, {dim}')
        self.register_buffer('rows', torch.zeros(size, dim))
        self.register_buffer('position', torch.zeros((), dtype=torch.long))
        self.register_buffer('filled', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, features: Tensor) -> None:
        """Append ``features`` (N, dim) of this process (gathered from all processes in
        rank order under ``torch.distributed``), dropping the oldest rows."""
        size, dim = self.rows.shape
        if features.dim() != 2 or features.shape[1] != dim:
            raise ValueError(f'features to enqueue must be (N, {dim}), got '
                             f'{tuple(features.shape)}')
        features = gather_no_grad(features)[-size:]
        index = (self.position + torch.arange(len(features), device=self.rows.device)) % size
        self.rows[index] = features.to(self.rows.dtype)
        self.position.copy_((self.position + len(features)) % size)
        self.filled.copy_((self.filled + len(features)).clamp(max=size))

    def snapshot(self) -> Tensor:
        """(K, dim) copy of the rows held (K = min(rows enqueued, size)), oldest first once
        the queue has wrapped; a copy, so that later enqueues do not change it."""
        if self.filled < len(self.rows):
            return self.rows[:self.filled].clone()
        return self.rows.roll(-int(self.position), dims=0)


@MODELS.register_module()
class MomentumContrastiveLoss(nn.Module):
    """ALBEF's image-text contrastive loss with momentum features, queues and distillation.

    Online image features ``u_i`` are scored against the momentum text features of the batch
    and the text queue (and texts ``v_j`` against images likewise), all L2-normalised, with
    scale ``s``. The targets mix the one-hot positives with the softmax of the momentum
    model's own scores against the same columns:

        T_i = (1 - alpha) onehot(i) + alpha softmax(s u^m_i . [v^m; queue_v])
        L = 1/2 [ mean_i CE(s u_i . [v^m; queue_v], T_i) + (text-to-image alike) ].

    Under ``torch.distributed`` the momentum columns of every process are gathered (no
    gradient flows into momentum features). Enqueue the momentum features after the loss.

    Args:
        max_scale: upper clamp of ``exp(log_scale)``.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, max_scale: float = 100.0, loss_weight: float = 1.0):
        super().__init__()
        self.max_scale = max_scale
        self.loss_weight = loss_weight

    def forward(self, image_features: Tensor, text_features: Tensor,
                momentum_image_features: Tensor, momentum_text_features: Tensor,
                log_scale: Tensor, alpha: float, image_queue: Optional[Tensor] = None,
                text_queue: Optional[Tensor] = None) -> Tensor:
        """Loss (scalar) of ``N`` pairs: online and momentum features, all (N, D) and
        row-aligned; ``log_scale`` scalar tensor; ``alpha`` distillation weight in [0, 1];
        queues (K, D) of past momentum features (e.g. :meth:`FeatureQueue.snapshot`)."""
        shape = image_features.shape
        for name, features in (('text_features', text_features),
                               ('momentum_image_features', momentum_image_features),
                               ('momentum_text_features', momentum_text_features)):
            if features.shape != shape or len(shape) != 2:
                raise ValueError(f'{name} must be (N, D) = {tuple(shape)} like '
                                 f'image_features, got {tuple(features.shape)}')
        for name, queue in (('image_queue', image_queue), ('text_queue', text_queue)):
            if queue is not None and (queue.dim() != 2 or queue.shape[1] != shape[1]):
                raise ValueError(f'{name} must be (K, {shape[1]}), got {tuple(queue.shape)}')
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        scale = log_scale.exp().clamp(max=self.max_scale)
        positive = world()[0] * shape[0] + torch.arange(shape[0], device=image_features.device)

        def direction(queries: Tensor, momentum_queries: Tensor, momentum_keys: Tensor,
                      queue: Optional[Tensor]) -> Tensor:
            keys = gather_no_grad(F.normalize(momentum_keys, dim=-1))
            if queue is not None:
                keys = torch.cat([keys, F.normalize(queue.detach(), dim=-1)])
            logits = scale * F.normalize(queries, dim=-1) @ keys.T
            targets = F.one_hot(positive, len(keys)).to(logits.dtype)
            if alpha > 0:
                with torch.no_grad():
                    soft = (scale * F.normalize(momentum_queries, dim=-1) @ keys.T).softmax(-1)
                targets = (1 - alpha) * targets + alpha * soft
            return F.cross_entropy(logits, targets)

        loss = (direction(image_features, momentum_image_features, momentum_text_features,
                          text_queue)
                + direction(text_features, momentum_text_features, momentum_image_features,
                            image_queue))
        return self.loss_weight * loss / 2
