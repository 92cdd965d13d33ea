"""Pascal VOC 2012 semantic segmentation with the zero-shot split of ZS3Net / SPNet."""
from mmseg.datasets import PascalVOCDataset

from vlkd.registry import DATASETS
from .seg_base import OpenVocabSegDataset

# mmseg's names, written as words (they are also the text prompts)
VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
               'potted plant', 'sheep', 'sofa', 'train', 'tv monitor')
# the 5 unseen classes of the standard 15 / 5 split (background counts as seen)
VOC_UNSEEN_CLASSES = ('potted plant', 'sheep', 'sofa', 'train', 'tv monitor')


@DATASETS.register_module()
class PascalVOCZeroShotDataset(OpenVocabSegDataset):
    """Pascal VOC 2012 in its official layout::

        VOCdevkit/VOC2012/JPEGImages/{id}.jpg
        VOCdevkit/VOC2012/SegmentationClass/{id}.png   palette PNG: 0 background,
                                                       1..20 classes, 255 border / void
        VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt

    (SBD's ``SegmentationClassAug`` grey PNGs hold the same values.) 21 classes, 5 unseen:
    potted plant, sheep, sofa, train, tv monitor.
    """
    METAINFO = dict(classes=VOC_CLASSES, palette=PascalVOCDataset.METAINFO['palette'],
                    unseen_classes=VOC_UNSEEN_CLASSES)

    def __init__(self, ann_file: str, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(ann_file=ann_file, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, **kwargs)
