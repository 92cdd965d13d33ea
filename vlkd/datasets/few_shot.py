"""Few-shot training sets: K labelled samples per class drawn from a dataset.

:class:`FewShotDataset` wraps any labelled dataset whose data infos hold ``gt_label``
(:class:`~vlkd.datasets.ImageFolderDataset`, :class:`~vlkd.datasets.ShapesObjectCropDataset`)
and keeps, for each class of ``classes`` (default: all of the dataset's), ``shots`` samples
drawn with ``seed`` (all of them with ``shots=None``). Labels are re-indexed to the order of
``classes``, so a base-class subset is a dataset of its own vocabulary: the protocols of
CoOp (1/2/4/8/16 shots, several seeds) and CoCoOp (train on the base half of the classes).
Each item's data sample gets ``sample_idx`` (its index in the few-shot set), which caching
methods (Tip-Adapter, linear probe) use to average augmented views per sample.
"""
import copy
import logging
import random
from typing import List, Optional

import torch
from mmengine.logging import print_log
from torch.utils.data import Dataset

from vlkd.registry import DATASETS
from .class_vocabulary import ClassSpec, resolve_classes

__all__ = ['FewShotDataset', 'few_shot_indices']


def few_shot_indices(labels: List[int], classes: List[int], shots: Optional[int],
                     seed: int) -> List[int]:
    """Indices of ``shots`` samples (all with None) of each label in ``classes``, drawn
    without replacement with ``seed``; grouped by class in the order of ``classes``,
    sorted within a class. A class with fewer samples gives all it has (a warning says so)."""
    by_label = {label: [] for label in classes}
    for index, label in enumerate(labels):
        if label in by_label:
            by_label[label].append(index)
    rng = random.Random(seed)
    chosen = []
    for label in classes:
        candidates = by_label[label]
        if shots is not None and len(candidates) > shots:
            candidates = sorted(rng.sample(candidates, shots))
        chosen += candidates
    return chosen


@DATASETS.register_module()
class FewShotDataset(Dataset):
    """``shots`` samples per class of ``dataset`` (module doc).

    Args:
        dataset: config of the labelled dataset (or the dataset).
        shots: samples per class; None keeps every sample of the chosen classes.
        seed: seed of the draw.
        classes: the classes to keep, in the new label order: a list, a class-name file or
            ``dict(file=..., subset='base')`` (:func:`~vlkd.datasets.class_vocabulary.
            resolve_classes`); None: all classes of ``dataset``.
    """

    def __init__(self, dataset, shots: Optional[int] = 16, seed: int = 1,
                 classes: Optional[ClassSpec] = None):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if shots is not None and shots < 1:
            raise ValueError(f'shots must be >= 1 (or None for all samples), got {shots}')
        parent = list(self.dataset.metainfo['classes'])
        self.classes = parent if classes is None else resolve_classes(classes, 'classes')
        unknown = [name for name in self.classes if name not in parent]
        if unknown:
            raise ValueError(f'Classes {unknown[:10]} are not in the dataset, whose classes '
                             f'are {parent[:10]}{"..." if len(parent) > 10 else ""}.')
        labels = []
        for index in range(len(self.dataset)):
            info = self.dataset.get_data_info(index)
            if 'gt_label' not in info:
                raise ValueError(f'{type(self.dataset).__name__} item {index} has no gt_label: '
                                 'FewShotDataset draws from labelled datasets.')
            labels.append(int(info['gt_label']))
        chosen = [parent.index(name) for name in self.classes]
        self.indices = few_shot_indices(labels, chosen, shots, seed)
        self.relabel = {old: new for new, old in enumerate(chosen)}
        counts = {name: 0 for name in self.classes}
        for index in self.indices:
            counts[parent[labels[index]]] += 1
        if not self.indices:
            raise ValueError(f'The dataset has no samples of the classes {self.classes[:10]}.')
        empty = [name for name, count in counts.items() if count == 0]
        if empty:
            print_log(f'FewShotDataset: no samples of classes {empty[:10]}.', logger='current',
                      level=logging.WARNING)
        short = {name: count for name, count in counts.items()
                 if shots is not None and 0 < count < shots}
        if short:
            print_log(f'FewShotDataset: fewer than {shots} samples of {len(short)} classes, '
                      f'all of them are used: {dict(list(short.items())[:10])}',
                      logger='current', level=logging.WARNING)
        self.shots, self.seed = shots, seed

    @property
    def metainfo(self) -> dict:
        return dict(copy.deepcopy(self.dataset.metainfo), classes=tuple(self.classes))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} samples')
        item = self.dataset[self.indices[idx]]
        sample = item['data_samples']
        sample.gt_label = torch.tensor(self.relabel[int(sample.gt_label)], dtype=torch.long)
        sample.set_metainfo(dict(sample_idx=idx))
        return item
