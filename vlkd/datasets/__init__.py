"""Datasets: the vlkd-shapes generators (images, videos), their mmdet / mmseg datasets, and
image-, video- and region-text datasets with their transforms and collate functions."""
from .shapes import (SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_COLORS, SHAPES_NOVEL_CLASSES,
                     default_shapes_root, generate_shapes, load_shapes_meta)
from .shapes_dataset import SHAPES_PALETTE, ShapesDataset, ShapesSegDataset
from .captions import ShapesCaptionDataset, ShapesObjectCropDataset  # noqa: F401
from .image_text import ImageTextDataset, SampleError  # noqa: F401
from .shapes_video import generate_shapes_video, load_shapes_video_meta  # noqa: F401
from .video_text import (LoadVideoFrames, PackVideoTextInputs, ResizeFrames,  # noqa: F401
                         ShapesVideoTextDataset)
from .region_text import LoadRegionFile, PackRegionTextInputs, RegionTextDataset  # noqa: F401
from .collate import region_text_collate, video_text_collate  # noqa: F401
from .linear_probe import LinearProbeDataset  # noqa: F401
from .ov_detection import OVCocoDataset, OVLVISV1Dataset  # noqa: F401
from .seg_loading import LoadSegAnnotations, SegAnnotationError  # noqa: F401
from .seg_base import OpenVocabSegDataset  # noqa: F401
from .seg_shapes import ShapesZeroShotSegDataset  # noqa: F401
from .seg_voc import PascalVOCZeroShotDataset  # noqa: F401
from .seg_coco_stuff import COCOStuffZeroShotDataset  # noqa: F401
from .seg_ade20k import ADE20KOpenVocabDataset  # noqa: F401
from .seg_pascal_context import PascalContext59OpenVocabDataset  # noqa: F401
from .class_vocabulary import base_novel_split, read_class_file, resolve_classes  # noqa: F401
from .image_folder import ImageFolderDataset, RandomResizedCrop, ResizeShorterSide  # noqa: F401
from .few_shot import FewShotDataset  # noqa: F401
