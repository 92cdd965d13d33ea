"""vlkd-shapes semantic masks as a zero-shot segmentation dataset (checked masks, the unseen
classes ignored in training if asked)."""
from vlkd.registry import DATASETS
from .seg_base import OpenVocabSegDataset
from .shapes import SHAPES_NOVEL_CLASSES
from .shapes_dataset import ShapesSegDataset


@DATASETS.register_module()
class ShapesZeroShotSegDataset(OpenVocabSegDataset, ShapesSegDataset):
    """:class:`ShapesSegDataset` (class 0 'background', pixel value = class index) with the
    novel classes as unseen classes::

        dict(type='ShapesZeroShotSegDataset', data_root='data/shapes/',
             data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
             ignore_classes=['star', 'heart', 'crescent'])   # zero-shot training
    """
    METAINFO = dict(ShapesSegDataset.METAINFO, unseen_classes=list(SHAPES_NOVEL_CLASSES))
