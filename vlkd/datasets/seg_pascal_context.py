"""Pascal-Context-59 for open-vocabulary evaluation."""
from mmseg.datasets import PascalContextDataset59

from vlkd.registry import DATASETS
from .seg_base import OpenVocabSegDataset

# mmseg's names, written as words (they are also the text prompts)
_WORDS = {'bedclothes': 'bed clothes', 'pottedplant': 'potted plant',
          'tvmonitor': 'tv monitor'}
PASCAL_CONTEXT59_CLASSES = tuple(_WORDS.get(name, name)
                                 for name in PascalContextDataset59.METAINFO['classes'])


@DATASETS.register_module()
class PascalContext59OpenVocabDataset(OpenVocabSegDataset):
    """Pascal-Context with the 59 frequent classes, for open-vocabulary evaluation.

    Layout: VOC 2010 images and the context masks converted from the official
    ``trainval_merged.json`` by mmseg's ``pascal_context.py`` (shipped with mmseg under
    ``.mim/tools/dataset_converters``)::

        VOCdevkit/VOC2010/JPEGImages/{id}.jpg
        VOCdevkit/VOC2010/SegmentationClassContext/{id}.png   0 background (ignored), 1..59
        VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt
    """
    METAINFO = dict(classes=PASCAL_CONTEXT59_CLASSES,
                    palette=PascalContextDataset59.METAINFO['palette'], unseen_classes=())

    def __init__(self, ann_file: str, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True, **kwargs) -> None:
        super().__init__(ann_file=ann_file, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)
