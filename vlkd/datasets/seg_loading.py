"""Loading semantic masks with checks: the mask must fit its image and hold only labels of
the dataset's class list."""
from typing import Optional

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from vlkd.registry import TRANSFORMS

INVALID = -1  # label-table entry of a pixel value that is no label of the dataset


class SegAnnotationError(ValueError):
    """A semantic mask that does not fit its image or its dataset's class list."""


@TRANSFORMS.register_module()
class LoadSegAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that maps pixel values through the sample's label table
    and refuses masks it cannot trust.

    :class:`vlkd.datasets.seg_base.OpenVocabSegDataset` puts ``label_table`` in every sample:
    an int16 array (256,) giving, for each pixel value of the stored mask, the class index
    in the dataset's class list, the ignore index (unlabelled pixels, classes left out or
    ignored for zero-shot training) or -1 (a value that is no label of the dataset). It does
    what mmseg's ``reduce_zero_label`` and ``label_map`` do, plus official label ids with
    gaps (COCO-Stuff).

    Errors (:class:`SegAnnotationError`, naming the file): a mask of another height / width
    than its image (``ori_shape``, so place the transform after ``LoadImageFromFile``); a
    colour (3-channel) mask; pixel values that are no label of the dataset. Samples without
    a label table (other datasets) are loaded as mmseg does, with the size check only.
    """

    def _load_seg_map(self, results: dict) -> None:
        table: Optional[np.ndarray] = results.get('label_table')
        if table is None:
            super()._load_seg_map(results)
            _check_size(results['gt_seg_map'], results)
            return
        path = results['seg_map_path']
        raw = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                               flag='unchanged', backend=self.imdecode_backend).squeeze()
        if raw.ndim != 2:
            raise SegAnnotationError(
                f'Mask {path} has shape {raw.shape}: a semantic mask is one channel of class '
                'ids (an 8-bit grey or palette PNG), not a colour image.')
        _check_size(raw, results)
        if raw.dtype != np.uint8:
            if raw.min() < 0 or raw.max() > 255:
                raise SegAnnotationError(
                    f'Mask {path} holds values from {raw.min()} to {raw.max()}; this dataset '
                    'stores class ids 0..255.')
            raw = raw.astype(np.uint8)
        labels = table[raw]
        if (labels == INVALID).any():
            bad = np.unique(raw[labels == INVALID])
            valid = np.flatnonzero(table != INVALID)
            raise SegAnnotationError(
                f'Mask {path} has pixel values {bad[:10].tolist()} that are no label of its '
                f'dataset (valid values: {_ranges(valid)}). Check that the mask belongs to '
                'this dataset and its format (reduce_zero_label; official ids or converted '
                'train ids).')
        results['gt_seg_map'] = labels.astype(np.uint8)
        results['seg_fields'].append('gt_seg_map')


def _check_size(mask: np.ndarray, results: dict) -> None:
    image_shape = results.get('ori_shape')
    if image_shape is not None and tuple(mask.shape[:2]) != tuple(image_shape[:2]):
        raise SegAnnotationError(
            f"Mask {results['seg_map_path']} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its "
            f"image {results.get('img_path')} is {image_shape[0]}x{image_shape[1]}: a mask "
            'must label every pixel of its image.')


def _ranges(values: np.ndarray) -> str:
    """'0-20, 255' for sorted integers."""
    parts, start = [], None
    for i, value in enumerate(values):
        if start is None:
            start = value
        if i + 1 == len(values) or values[i + 1] != value + 1:
            parts.append(str(start) if start == value else f'{start}-{value}')
            start = None
    return ', '.join(parts)
