"""Tip-Adapter and Tip-Adapter-F (Zhang et al., "Tip-Adapter: Training-free Adaption of
CLIP for Few-shot Classification", ECCV 2022).

A key-value cache of the few-shot training set: keys are the L2-normalised image
embeddings of the N training images (each the mean over ``cache_epochs`` augmented views),
values their one-hot labels L (N, C). For a test image with normalised embedding f::

    A = exp(-beta * (1 - f K^T))                     (1, N) affinities, beta: sharpness
    logits = logit_scale * f W^T + alpha * A L       W: template class embeddings (C, D)

alpha = 0 is the zero-shot classifier. Tip-Adapter needs no training beyond filling the
cache; Tip-Adapter-F (``finetune=True``) then makes the keys learnable (a linear layer
initialised with K; values and W stay fixed) and fine-tunes them with cross-entropy. The
cache is built by ``tools/train.py`` (see :mod:`.feature_cache`): ``cache_epochs`` epochs,
then for Tip-Adapter-F the fine-tuning epochs.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .feature_cache import CachingClassifier


@MODELS.register_module()
class TipAdapter(CachingClassifier):
    """Tip-Adapter(-F) (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        alpha: weight of the cache logits (0: zero-shot).
        beta: sharpness of the affinities.
        cache_epochs: augmented views of each training image averaged into its key
            (Tip-Adapter: 10).
        finetune: Tip-Adapter-F: learn the keys after the cache epochs.
    """

    method_name = 'TipAdapter'

    def __init__(self, teacher, classes, alpha: float = 1.0, beta: float = 5.5,
                 cache_epochs: int = 10, finetune: bool = False, **kwargs):
        super().__init__(teacher, classes, cache_epochs=cache_epochs, **kwargs)
        if alpha < 0 or beta < 0:
            raise ValueError(f'alpha and beta must be >= 0, got alpha={alpha}, beta={beta}')
        self.alpha, self.beta = float(alpha), float(beta)
        self.finetunes = finetune
        if finetune:
            self.method_name = 'TipAdapter-F'
        # Tip-Adapter-F's learnable keys (N, D); empty until fine-tuning starts (the size of
        # the training set is known only then). The optimizer holds this Parameter from the
        # start and sees its data replaced in place.
        self.keys = nn.Parameter(torch.zeros(0, self.backbone.embed_dim), requires_grad=finetune)

    def start_finetuning(self) -> None:
        if not self.keys.numel():
            self.keys.data = self.cache_keys().detach().clone()

    def cache_keys(self) -> Tensor:
        """Keys (N, D): the learned ones (Tip-Adapter-F) or the normalised cache means."""
        if self.keys.numel():
            return self.keys
        return F.normalize(self.cache.means()[0], dim=-1)

    def cache_values(self, names: Sequence[str]) -> Tensor:
        """One-hot labels (N, C) of the cached samples over ``names`` (rows of classes not
        in ``names`` are zero)."""
        labels = self.cache.means()[1]
        column = {name: j for j, name in enumerate(names)}
        columns = torch.tensor([column.get(self.classes[label], -1) for label in labels.tolist()],
                               dtype=torch.long, device=labels.device)
        values = torch.zeros(len(labels), len(names) + 1, device=labels.device)
        values[torch.arange(len(labels), device=labels.device), columns] = 1.0
        return values[:, :-1]  # column -1 collected the classes not in ``names``

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        images = self.image_embeddings(pixels)
        zero_shot = self.scaled(images, self.template_embeddings(names))
        if self.alpha == 0:
            return zero_shot
        if not len(self.cache):
            raise RuntimeError(f'{self.method_name} has an empty cache: train it first '
                               '(tools/train.py fills the cache), or load a checkpoint.')
        affinity = images @ self.cache_keys().t()
        cache_logits = torch.exp(-self.beta * (1 - affinity)) @ self.cache_values(names)
        return zero_shot + self.alpha * cache_logits

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        stored = state_dict.get(prefix + 'keys')
        if stored is not None:  # the learned keys have the size of the training set
            self.keys.data = torch.empty_like(stored, device=self.keys.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
