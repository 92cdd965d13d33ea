"""Tiny segmentation datasets written in the official layouts and file formats of Pascal VOC
2012, COCO-Stuff 164k, ADE20K-150 and Pascal-Context-59 (random pixels, random labels).

Each writer returns the dataset root; ``write_all(root)`` writes all four under ``root``
and returns ``{config data_root prefix: directory}`` for relocating the shipped configs
(``benchmark_configs``: the configs/seg files that read these datasets).
"""
from pathlib import Path

import numpy as np
from PIL import Image

from vlkd.datasets.seg_coco_stuff import COCO_STUFF_CATEGORY_IDS

VOC_PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128],
               [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0],
               [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128],
               [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128]]
SIZE = (24, 32)  # (height, width) of every image


def _image(rng, path: Path, size=SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, quality=95)


def _labels(rng, values, size=SIZE, void=255) -> np.ndarray:
    """Blocks of random values from ``values`` with a void border, as annotators draw."""
    labels = np.repeat(np.repeat(rng.choice(values, size=(size[0] // 8, size[1] // 8)),
                                 8, axis=0), 8, axis=1).astype(np.uint8)
    if void is not None:
        labels[::7, :] = void
    return labels


def write_voc(root: Path, seed: int = 0, splits=dict(train=3, val=2)) -> Path:
    """VOC2012: JPEGImages, palette PNGs in SegmentationClass, ImageSets/Segmentation."""
    rng = np.random.default_rng(seed)
    palette = [c for colour in VOC_PALETTE for c in colour] + [224, 224, 192] * 235
    for split, count in splits.items():
        names = [f'2007_{split}_{i:06d}' for i in range(count)]
        for name in names:
            _image(rng, root / 'JPEGImages' / f'{name}.jpg')
            mask = Image.fromarray(_labels(rng, np.arange(21)), mode='P')
            mask.putpalette(palette)
            (root / 'SegmentationClass').mkdir(parents=True, exist_ok=True)
            mask.save(root / 'SegmentationClass' / f'{name}.png')
        lists = root / 'ImageSets' / 'Segmentation'
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f'{split}.txt').write_text(''.join(f'{n}\n' for n in names))
    return root


def write_coco_stuff(root: Path, seed: int = 0, splits=dict(train2017=3, val2017=2)) -> Path:
    """COCO-Stuff 164k: images/SPLIT/*.jpg and stuffthingmaps (COCO id - 1) in
    annotations/SPLIT/*.png."""
    rng = np.random.default_rng(seed)
    stored = np.array(COCO_STUFF_CATEGORY_IDS) - 1
    for split, count in splits.items():
        for i in range(count):
            name = f'{i + 1:012d}'
            _image(rng, root / 'images' / split / f'{name}.jpg')
            (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(_labels(rng, stored)).save(root / 'annotations' / split
                                                       / f'{name}.png')
    return root


def write_ade20k(root: Path, seed: int = 0, splits=dict(training=3, validation=2)) -> Path:
    """ADEChallengeData2016: images/SPLIT/ADE_*.jpg, annotations/SPLIT/ADE_*.png (0 other,
    1..150)."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        tag = 'train' if split == 'training' else 'val'
        for i in range(count):
            name = f'ADE_{tag}_{i + 1:08d}'
            _image(rng, root / 'images' / split / f'{name}.jpg')
            (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(_labels(rng, np.arange(151), void=0)).save(
                root / 'annotations' / split / f'{name}.png')
    return root


def write_pascal_context(root: Path, seed: int = 0, splits=dict(train=3, val=2)) -> Path:
    """VOC2010 with mmseg's converted context masks: SegmentationClassContext (0 background,
    1..59) and ImageSets/SegmentationContext."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        names = [f'2008_{split}_{i:06d}' for i in range(count)]
        for name in names:
            _image(rng, root / 'JPEGImages' / f'{name}.jpg')
            (root / 'SegmentationClassContext').mkdir(parents=True, exist_ok=True)
            Image.fromarray(_labels(rng, np.arange(60), void=0)).save(
                root / 'SegmentationClassContext' / f'{name}.png')
        lists = root / 'ImageSets' / 'SegmentationContext'
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f'{split}.txt').write_text(''.join(f'{n}\n' for n in names))
    return root


def write_all(root: Path) -> dict:
    """All four datasets under ``root``, keyed by the data_root prefixes of configs/seg."""
    return {
        'data/VOCdevkit/VOC2012/': str(write_voc(root / 'VOCdevkit' / 'VOC2012')),
        'data/VOCdevkit/VOC2010/': str(write_pascal_context(root / 'VOCdevkit' / 'VOC2010')),
        'data/coco_stuff164k/': str(write_coco_stuff(root / 'coco_stuff164k')),
        'data/ade/ADEChallengeData2016/': str(write_ade20k(root / 'ade' / 'ADEChallengeData2016')),
    }


def benchmark_configs(config_dir: Path) -> list:
    """Names of the configs in ``config_dir`` (configs/seg) that read these datasets: all
    but the vlkd-shapes ones (``*_shapes.py``)."""
    return sorted(p.name for p in Path(config_dir).glob('*.py')
                  if not p.name.endswith('_shapes.py'))
