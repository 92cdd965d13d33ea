"""Linear probe: logistic regression on the frozen teacher's image embeddings, the CLIP
protocol of :mod:`vlkd.evaluation.linear_probe` (L-BFGS, CLIP's search of the inverse
regularisation C) applied to a few-shot training set.

``tools/train.py`` caches the embeddings of the training images (``cache_epochs`` views,
averaged; see :mod:`.feature_cache`); the probe is fitted on the cache when the model first
predicts after the cache changed: C is chosen on a held-out ``val_fraction`` of the cached
samples, then the probe is refitted on all of them. Checkpoints hold the cache (and the
probe if it was fitted before saving); the fit is deterministic, so a checkpoint predicts
the same either way. A probe scores only classes it saw in training.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.evaluation.linear_probe import (LogisticRegressionProbe, fit_logistic_regression,
                                          search_regularization)
from vlkd.registry import MODELS
from .feature_cache import CachingClassifier


@MODELS.register_module()
class LinearProbe(CachingClassifier):
    """Linear probe (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        cache_epochs: views of each training image averaged into its feature.
        val_fraction: share of the cached samples held out to choose C (drawn with
            ``seed``); with fewer than 2 held-out samples, or fewer than 2 classes left to
            fit, C is ``default_c``.
        normalize: fit on L2-normalised embeddings.
        max_iter: L-BFGS iterations per fit.

    The fitted probe is the linear layer ``head`` (C, D) (fitted, not trained by the
    optimizer); ``fitted_views`` records the cache it was fitted on and
    ``regularization`` the chosen C.
    """

    method_name = 'LinearProbe'

    def __init__(self, teacher, classes, cache_epochs: int = 1, val_fraction: float = 0.25,
                 normalize: bool = True, max_iter: int = 1000, seed: int = 0,
                 default_c: float = 1.0, **kwargs):
        super().__init__(teacher, classes, cache_epochs=cache_epochs, **kwargs)
        if not 0 < val_fraction < 1:
            raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
        self.class_indices(self.test_classes)
        self.val_fraction, self.normalize, self.max_iter = val_fraction, normalize, max_iter
        self.seed, self.default_c = seed, default_c
        self.head = nn.Linear(self.backbone.embed_dim, len(self.classes)).requires_grad_(False)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer('fitted_views', torch.tensor(-1))
        self.register_buffer('regularization', torch.tensor(float('nan'), dtype=torch.float64))

    def features(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def fit(self) -> LogisticRegressionProbe:
        """Choose C and fit the probe to the cache; copy it into ``head``."""
        if not len(self.cache):
            raise RuntimeError('The linear probe has an empty cache: train it first '
                               '(tools/train.py caches the training features), or load a '
                               'checkpoint.')
        features, labels = self.cache.means()
        features, labels = self.features(features).cpu(), labels.cpu()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        split = round(self.val_fraction * len(order))
        held_out, kept = order[:split], order[split:]
        if len(held_out) >= 2 and len(labels[kept].unique()) >= 2:
            def val_accuracy(c: float) -> float:
                probe = fit_logistic_regression(features[kept], labels[kept], c, self.max_iter)
                return probe.accuracy(features[held_out], labels[held_out])
            c, _ = search_regularization(val_accuracy)
        else:
            c = self.default_c
        probe = fit_logistic_regression(features, labels, c, self.max_iter)
        self.head.weight.zero_()
        self.head.bias.zero_()
        rows = probe.classes.to(self.head.weight.device)
        self.head.weight[rows] = probe.weight.to(self.head.weight)
        self.head.bias[rows] = probe.bias.to(self.head.bias)
        self.regularization.fill_(c)
        self.fitted_views.fill_(int(self.cache.views.sum()))
        return probe

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        if int(self.fitted_views) != int(self.cache.views.sum()):
            self.fit()
        scores = self.head(self.features(self.image_embeddings(pixels)))
        trained = torch.zeros(len(self.classes), dtype=torch.bool, device=scores.device)
        trained[self.cache.means()[1]] = True  # classes without training samples: -inf
        scores = scores.masked_fill(~trained, float('-inf'))
        return scores[:, self.class_indices(names)]
