"""Linear probe: L2-regularised logistic regression on frozen features (the CLIP protocol).

A multinomial logistic regression ``p(y | x) = softmax(W x + b)`` is fitted to the train
features by L-BFGS (torch, float64, CPU), minimising scikit-learn's objective

    sum_i -log p(y_i | x_i) + ||W||^2 / (2 C)        (the bias is not penalised),

over the classes present in the train split. ``C`` is chosen on a validation split by
CLIP's parametric search: log10 C on a coarse grid from -6 to 6 in steps of 2, then around
the best value the step is halved (trying one step either side) until it is 1/8 of a
decade; ties go to the smaller C (stronger regularisation). The probe is then refitted on
train + validation with that C and its top-1 accuracy on the test split is reported.

:class:`LinearProbeAccuracy` runs it on the features a model returns for a
:class:`vlkd.datasets.LinearProbeDataset` (labelled samples tagged ``probe_split`` train /
val / test; without val samples, ``val_fraction`` of the train samples is held out).
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor

from vlkd.registry import METRICS

__all__ = ['LogisticRegressionProbe', 'fit_logistic_regression', 'search_regularization',
           'linear_probe', 'LinearProbeAccuracy']


class LogisticRegressionProbe:
    """A fitted probe: ``weight`` (K, D), ``bias`` (K,) over ``classes`` (K,) labels."""

    def __init__(self, weight: Tensor, bias: Tensor, classes: Tensor):
        self.weight, self.bias, self.classes = weight, bias, classes

    def logits(self, features: Tensor) -> Tensor:
        """(N, K) class scores of features (N, D)."""
        return features.to(self.weight) @ self.weight.T + self.bias

    def predict(self, features: Tensor) -> Tensor:
        """(N,) predicted labels."""
        return self.classes[self.logits(features).argmax(dim=1)]

    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        """Top-1 accuracy in percent."""
        return 100.0 * (self.predict(features) == labels.to(self.classes)).double().mean().item()


def fit_logistic_regression(features: Tensor, labels: Tensor, c: float,
                            max_iter: int = 1000,
                            tolerance: float = 1e-10) -> LogisticRegressionProbe:
    """Fit the probe of the module docstring to features (N, D) and integer labels (N,)
    with inverse regularisation strength ``c`` (scikit-learn's ``C``)."""
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f'features must be (N, D) and labels (N,); got '
                         f'{tuple(features.shape)} and {tuple(labels.shape)}.')
    if c <= 0:
        raise ValueError(f'C must be positive, got {c}.')
    x = features.detach().double().cpu()
    classes, y = torch.unique(labels.detach().cpu().long(), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f'a probe needs at least two classes in its train split, got '
                         f'{classes.tolist()}.')
    weight = torch.zeros(len(classes), x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter,
                                  tolerance_grad=tolerance, tolerance_change=1e-14,
                                  history_size=20, line_search_fn='strong_wolfe')

    def closure():
        optimizer.zero_grad()
        # the objective divided by N: the same minimum, gradients of a sane scale
        loss = (F.cross_entropy(x @ weight.T + bias, y, reduction='sum')
                + weight.square().sum() / (2 * c)) / len(x)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LogisticRegressionProbe(weight.detach(), bias.detach(), classes)


def search_regularization(score: Callable[[float], float], low: float = -6.0,
                          high: float = 6.0, coarse_step: float = 2.0,
                          steps_per_decade: int = 8) -> Tuple[float, Dict[float, float]]:
    """CLIP's search for the C that maximises ``score(C)`` (module docstring).

    Returns the best C and every ``{C: score}`` tried.
    """
    scores = {}  # log10 C -> score

    def evaluate(exponent: float):
        exponent = round(exponent, 9)
        if low <= exponent <= high and exponent not in scores:
            scores[exponent] = score(10.0 ** exponent)

    for index in range(int(math.floor((high - low) / coarse_step + 1e-9)) + 1):
        evaluate(low + index * coarse_step)

    def best() -> float:
        return min(scores, key=lambda e: (-scores[e], e))

    step = coarse_step
    while step > 1.0 / steps_per_decade + 1e-9:
        step /= 2
        centre = best()
        evaluate(centre - step)
        evaluate(centre + step)
    return 10.0 ** best(), {10.0 ** e: s for e, s in sorted(scores.items())}


def linear_probe(train: Tuple[Tensor, Tensor], val: Tuple[Tensor, Tensor],
                 test: Tuple[Tensor, Tensor], max_iter: int = 1000) -> Dict[str, float]:
    """Choose C on ``val``, refit on ``train`` + ``val``, report on ``test``; each split a
    (features (N, D), labels (N,)) pair. Returns ``top1`` (test, %), ``C`` and ``val_top1``
    (%, the best validation accuracy)."""

    def val_accuracy(c: float) -> float:
        return fit_logistic_regression(*train, c, max_iter).accuracy(*val)

    c, tried = search_regularization(val_accuracy)
    probe = fit_logistic_regression(torch.cat([train[0], val[0]]),
                                    torch.cat([train[1], val[1]]), c, max_iter)
    return dict(top1=probe.accuracy(*test), C=c, val_top1=tried[c])


@METRICS.register_module()
class LinearProbeAccuracy(BaseMetric):
    """Top-1 accuracy (%) of a linear probe on frozen features (see the module docstring).

    Each data sample holds a feature (``feature_key``, (D,)), ``gt_label`` and
    ``probe_split`` ('train', 'val' or 'test'; :class:`vlkd.datasets.LinearProbeDataset`
    tags them). Results: ``top1``, the chosen ``C`` and ``val_top1``.

    Args:
        feature_key: the data-sample field holding the frozen feature.
        val_fraction: share of the train samples held out to choose C when no sample is
            tagged 'val' (drawn with ``seed``).
        normalize: L2-normalise the features first.
        max_iter: L-BFGS iterations per fit.
    """

    default_prefix = 'linear_probe'

    def __init__(self, feature_key: str = 'image_embedding', val_fraction: float = 0.2,
                 normalize: bool = False, max_iter: int = 1000, seed: int = 0,
                 collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < val_fraction < 1:
            raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}.')
        self.feature_key = feature_key
        self.val_fraction = val_fraction
        self.normalize = normalize
        self.max_iter = max_iter
        self.seed = seed

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            missing = [k for k in (self.feature_key, 'gt_label', 'probe_split')
                       if k not in sample]
            if missing:
                raise KeyError(f'{type(self).__name__} needs {missing} in the data samples '
                               f'(it got {sorted(sample)}); probe_split comes from '
                               'LinearProbeDataset.')
            feature = torch.as_tensor(sample[self.feature_key]).detach().double().cpu()
            self.results.append((feature.reshape(-1), int(sample['gt_label']),
                                 sample['probe_split']))

    def split(self, results: list, name: str) -> Tuple[Tensor, Tensor]:
        rows = [(f, label) for f, label, split in results if split == name]
        if not rows:
            return torch.zeros(0, len(results[0][0]), dtype=torch.float64), \
                torch.zeros(0, dtype=torch.long)
        features = torch.stack([f for f, _ in rows])
        if self.normalize:
            features = F.normalize(features, dim=-1)
        return features, torch.tensor([label for _, label in rows])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        unknown = sorted({split for _, _, split in results} - {'train', 'val', 'test'})
        if unknown:
            raise ValueError(f'probe_split must be train, val or test; got {unknown}.')
        train, val, test = (self.split(results, name) for name in ('train', 'val', 'test'))
        if not len(train[0]) or not len(test[0]):
            raise ValueError(f'a linear probe needs train and test samples; got '
                             f'{len(train[0])} train and {len(test[0])} test.')
        if not len(val[0]):
            order = torch.randperm(len(train[0]),
                                   generator=torch.Generator().manual_seed(self.seed))
            held_out = order[:max(1, round(self.val_fraction * len(order)))]
            kept = order[len(held_out):]
            val = (train[0][held_out], train[1][held_out])
            train = (train[0][kept], train[1][kept])
        return linear_probe(train, val, test, self.max_iter)
