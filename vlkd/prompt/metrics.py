"""Few-shot and base-to-novel accuracy of classifiers over class names.

The model scores every test image against the dataset's whole vocabulary (``pred_score``,
one logit per class of ``dataset_meta['classes']``). Reported, in percent:

- ``top1``: accuracy over all samples and all classes (the few-shot protocol);
- with ``novel_classes`` (the base-to-novel protocol of CoCoOp, where base and novel
  classes are evaluated as two separate tasks): ``base`` = accuracy of the base-class
  samples among the base classes only, ``novel`` = accuracy of the novel-class samples
  among the novel classes only, and ``H`` = their harmonic mean 2 B N / (B + N).
"""
from typing import Dict, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from vlkd.datasets.class_vocabulary import ClassSpec, resolve_classes
from vlkd.registry import METRICS
from .classifier import ClassVocabularyError


def harmonic_mean(base: float, novel: float) -> float:
    """2 B N / (B + N); 0 when both are 0."""
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def base_novel_accuracy(scores: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                        novel_classes: Sequence[str] = ()) -> Dict[str, float]:
    """The accuracies of the module doc from scores (N, C) over ``classes`` and labels (N,)."""
    unknown = sorted(set(novel_classes) - set(classes))
    if unknown:
        raise ValueError(f'novel classes {unknown} are not among the classes {list(classes)}')
    results = dict(top1=100.0 * (scores.argmax(1) == labels).double().mean().item())
    if not novel_classes:
        return results
    is_novel_class = torch.tensor([c in set(novel_classes) for c in classes])
    for name, group in (('base', ~is_novel_class), ('novel', is_novel_class)):
        rows = group[labels]
        if not rows.any():
            results[name] = float('nan')
            continue
        restricted = scores[rows][:, group]
        columns = torch.nonzero(group).flatten()
        correct = columns[restricted.argmax(1)] == labels[rows]
        results[name] = 100.0 * correct.double().mean().item()
    results['H'] = harmonic_mean(results['base'], results['novel'])
    return results


@METRICS.register_module()
class BaseNovelAccuracy(BaseMetric):
    """``top1`` and, given ``novel_classes``, ``base`` / ``novel`` / ``H`` (module doc).

    Args:
        novel_classes: the novel part of the dataset's classes (a list, a class-name file
            or ``dict(file=..., subset='novel')``); None for the few-shot protocol.
    """

    default_prefix = 'fewshot'

    def __init__(self, novel_classes: Optional[ClassSpec] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.novel_classes = [] if novel_classes is None else \
            resolve_classes(novel_classes, 'novel_classes')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self._check_names(sample.get('score_classes'))
            self.results.append((torch.as_tensor(sample['pred_score']).detach().cpu().float(),
                                 int(sample['gt_label'])))

    def _check_names(self, names: Optional[Sequence[str]]) -> None:
        """The model's vocabulary (PromptClassifier puts it in ``score_classes``) must be
        the dataset's, in the same order."""
        classes = list(self.dataset_meta['classes'])
        if names is not None and list(names) != classes:
            raise ClassVocabularyError(
                f'The model scores {len(names)} classes {list(names)[:5]}... but the dataset '
                f'has {len(classes)} classes {classes[:5]}...: set the model\'s test_classes '
                'to the dataset\'s classes, in the same order.')

    def compute_metrics(self, results: list) -> Dict[str, float]:
        classes = list(self.dataset_meta['classes'])
        widths = {len(score) for score, _ in results}
        if widths != {len(classes)}:
            raise ClassVocabularyError(
                f'The model scores {sorted(widths)} classes but the dataset has '
                f'{len(classes)}: the model\'s test_classes must be the dataset\'s classes '
                f'({classes[:5]}...).')
        scores = torch.stack([score for score, _ in results])
        labels = torch.tensor([label for _, label in results])
        return base_novel_accuracy(scores, labels, classes, self.novel_classes)
