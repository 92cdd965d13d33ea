"""Classification datasets stored as one folder of images per class (ImageFolder layout),
with a class-name file (:mod:`.class_vocabulary`) giving the label order and the names::

    DATA_ROOT/classnames.txt           "<folder> <class name>" per line, in label order
    DATA_ROOT/train/<folder>/*.jpg     one folder per class and split
    DATA_ROOT/val/<folder>/*.jpg
    DATA_ROOT/test/<folder>/*.jpg

Folders not named in the class-name file are ignored (e.g. Caltech101's background
class). Images are found recursively under each class folder, in sorted order.

Transforms for natural photos, as CLIP and CoOp preprocess them: :class:`RandomResizedCrop`
(training) and :class:`ResizeShorterSide` followed by mmcv's ``CenterCrop`` (testing).
"""
import math
import os
import os.path as osp
import random
from typing import List, Sequence, Tuple

import mmcv
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset

from vlkd.registry import DATASETS, TRANSFORMS
from .class_vocabulary import read_class_file

__all__ = ['ImageFolderDataset', 'RandomResizedCrop', 'ResizeShorterSide']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.tif', '.tiff', '.webp')


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Labelled images of one split in the ImageFolder layout (module doc).

    Items: ``img_path``, ``gt_label`` (index in the class-name file). Metainfo ``classes``:
    the readable names.

    Args:
        class_file: the class-name file, relative to ``data_root`` unless absolute.
        data_prefix: ``dict(img='train/')``: the split's folder under ``data_root``.
        extensions: image file endings to collect (lower case).
    """

    def __init__(self, class_file: str = 'classnames.txt', data_root: str = '',
                 data_prefix: dict = dict(img='train/'),
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, **kwargs):
        self.class_file = osp.join(data_root, class_file)
        self.entries = read_class_file(self.class_file)
        self.extensions = tuple(e.lower() for e in extensions)
        metainfo = dict(kwargs.pop('metainfo', None) or {},
                        classes=tuple(name for _, name in self.entries))
        super().__init__(data_root=data_root, data_prefix=data_prefix, metainfo=metainfo,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img', '')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'Image folder {img_dir} does not exist: the ImageFolder '
                                    'layout is DATA_ROOT/<split>/<class folder>/<images>.')
        data_list = []
        for label, (folder, name) in enumerate(self.entries):
            class_dir = osp.join(img_dir, folder)
            if not osp.isdir(class_dir):
                raise FileNotFoundError(f'{self.class_file} lists class {name!r} in folder '
                                        f'{folder!r}, but {class_dir} does not exist.')
            paths = sorted(osp.join(root, f) for root, _, files in os.walk(class_dir)
                           for f in files if f.lower().endswith(self.extensions))
            if not paths:
                raise FileNotFoundError(f'Class folder {class_dir} ({name!r}) holds no images '
                                        f'ending in {self.extensions}.')
            data_list += [dict(img_path=path, gt_label=label) for path in paths]
        return data_list


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random region of random area and aspect ratio, resized to ``size`` x
    ``size`` (Inception-style augmentation, as torchvision's ``RandomResizedCrop``).

    Args:
        size: output side in pixels.
        scale: range of the crop's area as a fraction of the image's.
        ratio: range of the crop's aspect ratio (width / height), drawn log-uniformly.
        attempts: random draws before falling back to the central crop of the largest
            allowed aspect ratio.
    """

    def __init__(self, size: int, scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10,
                 interpolation: str = 'bicubic'):
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f'scale must be 0 < low <= high <= 1 and ratio 0 < low <= high, '
                             f'got scale={scale}, ratio={ratio}')
        self.size, self.scale, self.ratio = int(size), tuple(scale), tuple(ratio)
        self.attempts, self.interpolation = attempts, interpolation

    def crop_box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """(x1, y1, x2, y2) of the crop in an image of ``height`` x ``width``."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.attempts):
            target = area * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                x, y = random.randint(0, width - w), random.randint(0, height - h)
                return x, y, x + w, y + h
        aspect = width / height  # fallback: the whole image clipped to the ratio range
        if aspect < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        x, y = (width - w) // 2, (height - h) // 2
        return x, y, x + w, y + h

    def transform(self, results: dict) -> dict:
        img = results['img']
        x1, y1, x2, y2 = self.crop_box(*img.shape[:2])
        img = mmcv.imresize(img[y1:y2, x1:x2], (self.size, self.size),
                            interpolation=self.interpolation)
        results.update(img=img, img_shape=img.shape[:2])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio})')


@TRANSFORMS.register_module()
class ResizeShorterSide(BaseTransform):
    """Resize keeping the aspect ratio so that the shorter side is ``size`` pixels."""

    def __init__(self, size: int, interpolation: str = 'bicubic'):
        self.size, self.interpolation = int(size), interpolation

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        factor = self.size / min(height, width)
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        img = mmcv.imresize(img, new_size, interpolation=self.interpolation)
        results.update(img=img, img_shape=img.shape[:2])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(size={self.size})'
