"""COCO-Stuff 164k with the zero-shot split of ZS3Net / SPNet (156 seen / 15 unseen)."""
from mmseg.datasets import COCOStuffDataset

from vlkd.registry import DATASETS
from .seg_base import OpenVocabSegDataset

COCO_STUFF_CLASSES = COCOStuffDataset.METAINFO['classes']  # 80 things, 91 stuff
COCO_STUFF_UNSEEN_CLASSES = ('frisbee', 'skateboard', 'cardboard', 'carrot', 'scissors',
                             'suitcase', 'giraffe', 'cow', 'road', 'wall-concrete', 'tree',
                             'grass', 'river', 'clouds', 'playingfield')
# COCO category ids of the 171 classes, in class order: the things' ids have gaps (ids of
# categories dropped from COCO), the stuff ids are 92..182. The official stuffthingmaps
# PNGs store id - 1 (255: unlabelled).
_THING_IDS = [i for i in range(1, 91)
              if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_STUFF_CATEGORY_IDS = tuple(_THING_IDS + list(range(92, 183)))


@DATASETS.register_module()
class COCOStuffZeroShotDataset(OpenVocabSegDataset):
    """COCO-Stuff 164k, 171 classes (no background), 15 unseen.

    Layout (the official images and ``stuffthingmaps_trainval2017`` unpacked)::

        images/{train2017,val2017}/{id}.jpg
        annotations/{train2017,val2017}/{id}.png    value = COCO category id - 1, 255 void

    Args:
        train_ids: the masks were converted by mmseg's ``coco_stuff164k.py`` to
            ``{id}_labelTrainIds.png`` (values 0..170 in class order); then also set
            ``seg_map_suffix='_labelTrainIds.png'``.
    """
    METAINFO = dict(classes=COCO_STUFF_CLASSES, palette=COCOStuffDataset.METAINFO['palette'],
                    unseen_classes=COCO_STUFF_UNSEEN_CLASSES)

    def __init__(self, train_ids: bool = False, img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png', **kwargs) -> None:
        self.train_ids = train_ids
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def raw_label_ids(self, num_classes: int):
        if self.train_ids:
            return list(range(num_classes))
        return [category_id - 1 for category_id in COCO_STUFF_CATEGORY_IDS]
