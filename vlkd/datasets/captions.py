"""vlkd-shapes as image-text pairs, for contrastive pretraining of a teacher.

- :class:`ShapesCaptionDataset` (training): every fetch of an image draws, with probability
  ``crop_prob``, one of its objects as a close-up with a per-object caption ("a red star",
  "a picture of a star", ...), otherwise the whole scene with one of its captions (chosen at
  random per fetch). Web image-text data holds both scenes and close-ups of single objects;
  the close-ups are what make a teacher good at the crops it later embeds for distillation.
- :class:`ShapesObjectCropDataset` (evaluation): every object of a split, once, as a crop
  with its class label, for zero-shot classification.

Both read the COCO files written by :func:`vlkd.datasets.shapes.generate_shapes`; a crop
is described by ``crop_bbox`` (x1, y1, x2, y2 in pixels) and cut out by :class:`CropRegion`.
Pipelines end with :class:`PackImageTextInputs`: ``inputs`` (3, H, W) uint8 BGR and a data
sample with ``text`` (metainfo) and, for crops, ``gt_label``. :class:`ShapesCaptionDataset`
also gives every item a ``unicl_label`` for image-text-label contrast (UniCL): the class
index for a crop, ``len(classes) + img_id`` for a scene (each image its own label; the same
image fetched twice in a batch shares it, correctly: both captions describe it).

Captions are checked when the dataset loads (:func:`vlkd.datasets.image_text.
load_coco_captions`: an empty caption is an error naming its annotation id and image), and
an image that fails to decode raises a :class:`~vlkd.datasets.image_text.SampleError`
naming the sample when it is fetched.
"""
import os.path as osp
import random
import re
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from vlkd.registry import DATASETS, TRANSFORMS
from vlkd.teachers.templates import SHAPES_TEMPLATES, fill_template
from .image_text import load_coco_captions, read_annotation_json, run_pipeline
from .shapes import SHAPES_CLASSES

_MAKE_DATA = 'Generate vlkd-shapes with `python tools/make_shapes.py --out DATA_ROOT`.'


def load_coco_instances(path: str, classes: Sequence[str], img_dir: str) -> List[dict]:
    """Per image of a COCO instances file: ``img_path``, ``img_id`` and ``instances``
    (``bbox`` x1, y1, x2, y2 px; ``bbox_label`` index in ``classes``; ``color``)."""
    coco = read_annotation_json(path, _MAKE_DATA)
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    unknown = sorted(set(names.values()) - set(classes))
    if unknown:
        raise ValueError(f'{path} has categories {unknown} that are not in the dataset classes '
                         f'{list(classes)}.')
    images = {img['id']: dict(img_path=osp.join(img_dir, img['file_name']), img_id=img['id'],
                              height=img['height'], width=img['width'], instances=[])
              for img in coco['images']}
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        images[ann['image_id']]['instances'].append(dict(
            bbox=[x, y, x + w, y + h], bbox_label=classes.index(names[ann['category_id']]),
            color=ann.get('color')))
    return list(images.values())


@DATASETS.register_module()
class ShapesCaptionDataset(BaseDataset):
    """vlkd-shapes images with their captions, plus object close-ups (see module doc).

    Args:
        ann_file: COCO captions file (``annotations/captions_train.json``).
        instances_file: COCO instances file of the same split (boxes, classes, colours).
        crop_prob: probability that a fetch yields an object crop instead of the scene.
        color_prob: probability that an object caption names the colour ("a red star")
            rather than the class alone ("a star").
        data_prefix: ``dict(img='images/train/')``.
    """

    METAINFO = dict(classes=SHAPES_CLASSES)

    def __init__(self, ann_file: str, instances_file: str, crop_prob: float = 0.5,
                 color_prob: float = 0.5, **kwargs):
        for name, p in (('crop_prob', crop_prob), ('color_prob', color_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {p}')
        self.instances_file = instances_file
        self.crop_prob = crop_prob
        self.color_prob = color_prob
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        instances_file = osp.join(self.data_root, self.instances_file)
        img_dir = self.data_prefix.get('img', '')
        data_list = load_coco_instances(instances_file, self.metainfo['classes'], img_dir)
        captioned = {image['img_id']: image
                     for image in load_coco_captions(self.ann_file, img_dir, _MAKE_DATA)}
        for info in data_list:
            if info['img_id'] not in captioned:
                raise ValueError(f"Image {info['img_id']} has no caption in {self.ann_file}.")
            info['captions'] = captioned[info['img_id']]['captions']
            info['caption_ids'] = captioned[info['img_id']]['caption_ids']
        return data_list

    def object_caption(self, name: str, color: Optional[str]) -> str:
        """A random caption of one object: a shapes template filled with its class name,
        preceded by its colour with probability ``color_prob``."""
        phrase = f'{color} {name}' if color and random.random() < self.color_prob else name
        return fill_template(random.choice(SHAPES_TEMPLATES), phrase)

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        classes = self.metainfo['classes']
        if info['instances'] and random.random() < self.crop_prob:
            obj = random.choice(info['instances'])
            info['crop_bbox'] = obj['bbox']
            info['gt_label'] = info['unicl_label'] = obj['bbox_label']
            info['text'] = self.object_caption(classes[obj['bbox_label']], obj['color'])
        else:
            index = random.randrange(len(info['captions']))
            info['text'] = info['captions'][index]
            info['caption_id'] = info['caption_ids'][index]
            info['unicl_label'] = len(classes) + info['img_id']
        return run_pipeline(self.pipeline, info, type(self).__name__)


@DATASETS.register_module()
class ShapesObjectCropDataset(BaseDataset):
    """Every object of a vlkd-shapes split as one item: ``crop_bbox``, ``gt_label`` and the
    caption "a {colour} {class}", for zero-shot classification of crops.

    Args:
        ann_file: COCO instances file (``annotations/instances_val.json``).
        data_prefix: ``dict(img='images/val/')``.
    """

    METAINFO = dict(classes=SHAPES_CLASSES)

    def load_data_list(self) -> List[dict]:
        classes = self.metainfo['classes']
        data_list = []
        for image in load_coco_instances(self.ann_file, classes, self.data_prefix.get('img', '')):
            for obj in image.pop('instances'):
                name = classes[obj['bbox_label']]
                text = fill_template('a {}', f"{obj['color']} {name}" if obj['color'] else name)
                data_list.append(dict(image, crop_bbox=obj['bbox'], gt_label=obj['bbox_label'],
                                      text=text))
        return data_list

    def prepare_data(self, idx: int) -> dict:
        return run_pipeline(self.pipeline, self.get_data_info(idx), type(self).__name__)


@TRANSFORMS.register_module()
class CropRegion(BaseTransform):
    """Cut ``results['crop_bbox']`` (x1, y1, x2, y2 px) out of ``results['img']``.

    The box is enlarged about its centre by a factor drawn uniformly from ``scale_range``
    and moved by up to ``max_shift`` times its width / height (both 0 jitter by default).
    Pixels outside the image are black, as in ``roi_align``. Results without ``crop_bbox``
    pass unchanged, so scenes and crops share one pipeline.
    """

    def __init__(self, scale_range: Tuple[float, float] = (1.0, 1.0), max_shift: float = 0.0):
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be (low, high) with 0 < low <= high, got '
                             f'{scale_range}')
        self.scale_range = tuple(scale_range)
        self.max_shift = max_shift

    def transform(self, results: dict) -> dict:
        if results.get('crop_bbox') is None:
            return results
        x1, y1, x2, y2 = results['crop_bbox']
        width, height = x2 - x1, y2 - y1
        scale = random.uniform(*self.scale_range)
        cx = (x1 + x2) / 2 + random.uniform(-self.max_shift, self.max_shift) * width
        cy = (y1 + y2) / 2 + random.uniform(-self.max_shift, self.max_shift) * height
        left, right = round(cx - scale * width / 2), round(cx + scale * width / 2)
        top, bottom = round(cy - scale * height / 2), round(cy + scale * height / 2)
        right, bottom = max(right, left + 1), max(bottom, top + 1)

        img = results['img']
        crop = np.zeros((bottom - top, right - left) + img.shape[2:], dtype=img.dtype)
        src_x1, src_y1 = max(left, 0), max(top, 0)
        src_x2, src_y2 = min(right, img.shape[1]), min(bottom, img.shape[0])
        if src_x2 > src_x1 and src_y2 > src_y1:
            crop[src_y1 - top:src_y2 - top, src_x1 - left:src_x2 - left] = \
                img[src_y1:src_y2, src_x1:src_x2]
        results['img'] = crop
        results['img_shape'] = crop.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale_range={self.scale_range}, max_shift={self.max_shift})'


@TRANSFORMS.register_module()
class RandomFlipImageText(BaseTransform):
    """Flip the image left-right with probability ``prob`` and swap "left" and "right" in
    ``results['text']``, so that captions with positions stay true."""

    _SIDES = re.compile(r'\b(left|right)\b')

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if random.random() < self.prob:
            results['img'] = mmcv.imflip(results['img'], direction='horizontal')
            if 'text' in results:
                results['text'] = self._SIDES.sub(
                    lambda m: 'right' if m.group(1) == 'left' else 'left', results['text'])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class PackImageTextInputs(BaseTransform):
    """Pack ``img`` (H, W, 3) into ``inputs`` (3, H, W) and the rest into a data sample:
    the labels ``gt_label`` and ``unicl_label`` (0-d int64 tensors) if present,
    ``meta_keys`` (``text`` among them) as metainfo. ``texts`` (all captions of an image)
    and ``negative_text`` come from :class:`~vlkd.datasets.ImageTextDataset`."""

    LABEL_KEYS = ('gt_label', 'unicl_label')

    def __init__(self, meta_keys: Sequence[str] = ('img_id', 'img_path', 'text', 'crop_bbox',
                                                   'caption_id', 'texts', 'negative_text')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={key: results[key] for key in self.meta_keys
                                           if key in results})
        for key in self.LABEL_KEYS:
            if results.get(key) is not None:
                sample.set_field(torch.tensor(results[key], dtype=torch.long), key)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
