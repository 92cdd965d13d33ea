"""Labelled datasets joined for a linear probe: every item tagged with its probe split.

A linear probe (:class:`vlkd.evaluation.LinearProbeAccuracy`) needs the frozen features of a
train split (to fit), optionally a validation split (to choose the regularisation) and a
test split (to report), all in one evaluation run::

    test_dataloader = dict(..., dataset=dict(
        type='LinearProbeDataset',
        train=dict(type='ShapesObjectCropDataset', ann_file='annotations/instances_train.json',
                   ..., test_mode=True),
        test=dict(type='ShapesObjectCropDataset', ann_file='annotations/instances_val.json',
                  ..., test_mode=True)))
    test_evaluator = dict(type='LinearProbeAccuracy')

Items are those of the parts, in the order train, val, test, with ``probe_split`` added to
the metainfo of their data samples; ``metainfo`` is the test part's.
"""
import bisect
import copy
from typing import Optional

from torch.utils.data import Dataset

from vlkd.registry import DATASETS

__all__ = ['LinearProbeDataset']


@DATASETS.register_module()
class LinearProbeDataset(Dataset):
    """The ``train``, ``val`` (optional) and ``test`` datasets (configs) as one dataset whose
    data samples say which they come from (``probe_split``)."""

    def __init__(self, train: dict, test: dict, val: Optional[dict] = None):
        self.parts = [(name, DATASETS.build(cfg)) for name, cfg in
                      (('train', train), ('val', val), ('test', test)) if cfg is not None]
        for name, part in self.parts:
            if len(part) == 0:
                raise ValueError(f'The {name} part of the linear probe has no samples.')
        self.ends = []
        for _, part in self.parts:
            self.ends.append((self.ends[-1] if self.ends else 0) + len(part))

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(getattr(self.parts[-1][1], 'metainfo', {}))

    def __len__(self) -> int:
        return self.ends[-1]

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} items')
        part = bisect.bisect_right(self.ends, idx)
        name, dataset = self.parts[part]
        item = dataset[idx - (self.ends[part - 1] if part else 0)]
        item['data_samples'].set_metainfo(dict(probe_split=name))
        return item
