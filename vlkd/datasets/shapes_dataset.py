"""vlkd-shapes as an mmdet detection dataset and an mmseg segmentation dataset.

Both read the layout written by :func:`vlkd.datasets.shapes.generate_shapes`. Detection::

    dict(type='vlkd.ShapesDataset', data_root=ROOT,
         ann_file='annotations/instances_train_base.json', data_prefix=dict(img='images/train/'),
         metainfo=dict(classes=SHAPES_BASE_CLASSES))   # labels 0..8 in base order

mmdet's CocoDataset maps categories to labels in the annotation file's category order, not
in the order of ``metainfo['classes']`` (and skips unknown names silently); ShapesDataset
therefore refuses a class list that is not a subsequence of ``SHAPES_CLASSES``. Masks are
compressed RLE: load them with ``LoadAnnotations(with_mask=True)`` (``poly2mask=True``, the
default). ``data_prefix=dict(..., seg='semantic/train/')`` adds the semantic maps.

Segmentation (pixel value = class index + 1, 0 = background, hence class 0 'background')::

    dict(type='vlkd.ShapesSegDataset', data_root=ROOT,
         data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
         metainfo=dict(classes=('background',) + SHAPES_BASE_CLASSES))  # novel pixels -> 255
"""
from pathlib import Path

from mmdet.datasets import CocoDataset
from mmseg.datasets import BaseSegDataset

from vlkd.registry import DATASETS

from .shapes import SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_NOVEL_CLASSES

__all__ = ['ShapesDataset', 'ShapesSegDataset', 'SHAPES_PALETTE']

SHAPES_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                  (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
                  (174, 199, 232), (255, 187, 120)]  # one RGB colour per class, for drawing

_MAKE_IT = 'generate it with `python tools/make_shapes.py --out DATA_ROOT` (see vlkd.datasets.shapes)'


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """mmdet's CocoDataset with the vlkd-shapes classes and open-vocabulary split."""

    METAINFO = dict(classes=SHAPES_CLASSES, palette=SHAPES_PALETTE,
                    base_classes=list(SHAPES_BASE_CLASSES),
                    novel_classes=list(SHAPES_NOVEL_CLASSES))

    def load_data_list(self) -> list:
        if not Path(self.ann_file).is_file():
            raise FileNotFoundError(f'vlkd-shapes annotation file {self.ann_file} not found: '
                                    f'{_MAKE_IT}.')
        classes = list(self.metainfo['classes'])
        in_order = [c for c in SHAPES_CLASSES if c in classes]
        if classes != in_order:
            raise ValueError(
                f'ShapesDataset classes {classes} must be distinct names from SHAPES_CLASSES '
                f'listed in that order ({list(SHAPES_CLASSES)}), because mmdet numbers the '
                f'labels in the order of the categories of {self.ann_file}.')
        return super().load_data_list()


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """mmseg dataset of vlkd-shapes semantic masks: class 0 is 'background'."""

    METAINFO = dict(classes=('background',) + SHAPES_CLASSES,
                    palette=[(0, 0, 0)] + SHAPES_PALETTE,
                    base_classes=list(SHAPES_BASE_CLASSES),
                    novel_classes=list(SHAPES_NOVEL_CLASSES))

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def load_data_list(self) -> list:
        for key in ('img_path', 'seg_map_path'):
            folder = self.data_prefix.get(key)
            if folder and not Path(folder).is_dir():
                raise FileNotFoundError(f'vlkd-shapes folder {folder} ({key}) not found: '
                                        f'{_MAKE_IT}.')
        return super().load_data_list()
