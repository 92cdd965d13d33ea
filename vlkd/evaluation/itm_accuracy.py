"""Image-text matching accuracy: is each (image, text) pair correctly called a match or not?

The model scores positive pairs (an image with its caption) and swapped negatives (with a
caption of another image, e.g. ``negative_text`` of ``ImageTextDataset(itm_negatives=True)``)
with its ITM head. A pair is called a match when its logit is above ``threshold`` (0: a
sigmoid probability above 0.5, as ``ImageTextMatchingLoss`` trains it). Reported, in
percent: ``accuracy`` over all pairs, ``positive_accuracy`` (matches called matches),
``negative_accuracy`` (non-matches called non-matches) and ``balanced_accuracy``, their mean,
which does not depend on how many negatives each positive has.
"""
from typing import Dict, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from vlkd.registry import METRICS

__all__ = ['ImageTextMatchingAccuracy']


@METRICS.register_module()
class ImageTextMatchingAccuracy(BaseMetric):
    """ITM accuracy over the pairs of every data sample (see the module docstring).

    Each data sample holds ``itm_logits`` (P,) matching logits of P pairs and ``itm_labels``
    (P,) 1 for a matching pair, 0 for a negative (e.g. ``[1, 0]``: its caption, then a
    swapped one).

    Args:
        threshold: logit above which a pair is called a match.
    """

    default_prefix = 'itm'

    def __init__(self, threshold: float = 0.0, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.threshold = threshold

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            missing = [k for k in ('itm_logits', 'itm_labels') if k not in sample]
            if missing:
                raise KeyError(f'{type(self).__name__} needs {missing} in the data samples the '
                               f'model returns (it got {sorted(sample)}).')
            logits = torch.as_tensor(sample['itm_logits']).detach().float().cpu().reshape(-1)
            labels = torch.as_tensor(sample['itm_labels']).detach().cpu().reshape(-1)
            if logits.shape != labels.shape:
                raise ValueError(f'itm_logits {tuple(logits.shape)} and itm_labels '
                                 f'{tuple(labels.shape)} must have one entry per pair.')
            if not ((labels == 0) | (labels == 1)).all():
                raise ValueError(f'itm_labels must be 0 or 1, got {labels.tolist()}.')
            self.results.append((logits > self.threshold, labels.bool()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        called = torch.cat([c for c, _ in results])
        labels = torch.cat([lb for _, lb in results])
        correct = (called == labels).double()

        def percent(mask):
            return 100.0 * correct[mask].mean().item() if mask.any() else float('nan')

        positive, negative = percent(labels), percent(~labels)
        return dict(accuracy=100.0 * correct.mean().item(), positive_accuracy=positive,
                    negative_accuracy=negative, balanced_accuracy=(positive + negative) / 2)
