"""Datasets: the built-in vlkd-shapes generator and its mmdet / mmseg datasets."""
from .shapes import (SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_COLORS, SHAPES_NOVEL_CLASSES,
                     default_shapes_root, generate_shapes, load_shapes_meta)
from .shapes_dataset import SHAPES_PALETTE, ShapesDataset, ShapesSegDataset
from .captions import ShapesCaptionDataset, ShapesObjectCropDataset  # noqa: F401
from .image_text import ImageTextDataset, SampleError  # noqa: F401
