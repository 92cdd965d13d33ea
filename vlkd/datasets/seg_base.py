"""Base of the open-vocabulary segmentation datasets: a zero-shot class split, pixel values
mapped through one label table, checked masks.

A subclass declares ``METAINFO`` (``classes``, ``palette``, ``unseen_classes``: the split's
classes without training labels, read by :class:`vlkd.evaluation.OpenVocabIoUMetric`) and,
when the stored masks do not hold class ``i`` as value ``i`` (``+1`` with
``reduce_zero_label``), ``RAW_LABEL_IDS``: the pixel value of each class.

Zero-shot training keeps all classes in the label numbering and ignores the unseen ones::

    dict(type='PascalVOCZeroShotDataset', ..., ignore_classes=VOC_UNSEEN_CLASSES)

while ``metainfo=dict(classes=SEEN)`` renumbers the labels to the seen classes only (mmseg's
subset rule: pixels of the other classes are ignored).
"""
import difflib
from typing import List, Optional, Sequence

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations

from vlkd.registry import DATASETS
from .seg_loading import INVALID, LoadSegAnnotations


@DATASETS.register_module()
class OpenVocabSegDataset(BaseSegDataset):
    """mmseg's BaseSegDataset with ``ignore_classes`` and checked masks.

    The pipeline must load masks with :class:`LoadSegAnnotations`, which maps pixel values
    through the sample's ``label_table`` (built here) and raises a clear error for masks
    with values that are no label of the dataset or a size that is not their image's.

    Args:
        ignore_classes: class names whose pixels become ``ignore_index`` (e.g. the unseen
            classes during zero-shot training); the numbering of the classes is unchanged.
        **kwargs: as mmseg's :class:`BaseSegDataset` (``data_root``, ``data_prefix``,
            ``ann_file``, ``metainfo``, ``pipeline``, ``reduce_zero_label``, ...).
    """
    RAW_LABEL_IDS: Optional[Sequence[int]] = None

    def __init__(self, ignore_classes: Sequence[str] = (), **kwargs) -> None:
        if isinstance(ignore_classes, str):
            raise TypeError(f'ignore_classes must be a list of class names, got the string '
                            f'{ignore_classes!r}.')
        self.ignore_classes = list(ignore_classes)
        super().__init__(**kwargs)
        self._check_pipeline()

    def label_table(self, apply_ignore: bool = True) -> np.ndarray:
        """int16 (256,): stored pixel value -> class index, ``ignore_index`` or -1 (no
        label of this dataset); ``apply_ignore=False`` leaves ``ignore_classes`` out."""
        classes = list(self._metainfo.get('classes') or ())
        if not classes:
            raise ValueError(f'{type(self).__name__} needs class names: give '
                             "metainfo=dict(classes=[...]).")
        stored = list(self.METAINFO.get('classes') or classes)  # classes of the stored ids
        unknown = [c for c in self.ignore_classes if c not in classes]
        if unknown:
            hints = [f'{c!r}' + (f' (did you mean {m[0]!r}?)' if m else '')
                     for c in unknown for m in [difflib.get_close_matches(c, classes, n=1)]]
            raise ValueError(f'ignore_classes has names that are not classes of '
                             f'{type(self).__name__}: {", ".join(hints)}.')
        raw_ids = self.raw_label_ids(len(stored))
        if len(raw_ids) != len(stored) or max(raw_ids) > 255 or min(raw_ids) < 0:
            raise ValueError(f'{type(self).__name__} needs one stored pixel value in 0..255 '
                             f'per class: {len(stored)} classes, ids {list(raw_ids)[:5]}...')
        table = np.full(256, INVALID, dtype=np.int16)
        table[self.ignore_index] = self.ignore_index
        if self.reduce_zero_label:
            table[0] = self.ignore_index
        for name, raw in zip(stored, raw_ids):
            keep = name in classes and not (apply_ignore and name in self.ignore_classes)
            table[raw] = classes.index(name) if keep else self.ignore_index
        return table

    def raw_label_ids(self, num_classes: int) -> List[int]:
        """Pixel value of each class of ``METAINFO`` in the stored masks."""
        if self.RAW_LABEL_IDS is not None:
            return list(self.RAW_LABEL_IDS)
        return [i + int(self.reduce_zero_label) for i in range(num_classes)]

    def load_data_list(self) -> List[dict]:
        table = self.label_table()
        data_list = super().load_data_list()
        for info in data_list:
            info['label_table'] = table
        return data_list

    def _check_pipeline(self) -> None:
        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, LoadAnnotations) and \
                    not isinstance(transform, LoadSegAnnotations):
                raise ValueError(
                    f'{type(self).__name__} maps and checks mask values with '
                    "dict(type='vlkd.LoadSegAnnotations') (in an mmseg-scoped pipeline; "
                    "'LoadSegAnnotations' in vlkd's scope), not mmseg's LoadAnnotations: "
                    'replace it in the pipeline.')
