"""ADE20K-150 (SceneParsing) for open-vocabulary evaluation."""
from mmseg.datasets import ADE20KDataset

from vlkd.registry import DATASETS
from .seg_base import OpenVocabSegDataset

ADE20K_CLASSES = tuple(name.strip() for name in ADE20KDataset.METAINFO['classes'])


@DATASETS.register_module()
class ADE20KOpenVocabDataset(OpenVocabSegDataset):
    """ADE20K-150 in its official layout (``ADEChallengeData2016``)::

        images/{training,validation}/ADE_*.jpg
        annotations/{training,validation}/ADE_*.png   0 'other' (ignored), 1..150 classes

    Open-vocabulary evaluation: a model trained elsewhere (e.g. on COCO-Stuff) is tested on
    all 150 classes, none of them seen in training (no ``unseen_classes`` split).
    """
    METAINFO = dict(classes=ADE20K_CLASSES, palette=ADE20KDataset.METAINFO['palette'],
                    unseen_classes=())

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
