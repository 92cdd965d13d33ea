"""Image-text pairs from a COCO-captions file: the format to point vlkd at your own data.

COCO captions json (``captions_train2017.json``, or what :mod:`vlkd.datasets.shapes`
writes)::

    {"images": [{"id": int, "file_name": str (relative to data_prefix['img']), ...}],
     "annotations": [{"id": int, "image_id": int, "caption": str}, ...]}

Loading checks the file and names what is wrong: an annotation whose image is not listed,
a caption that is not a string or is empty / blank (by annotation id and image file),
duplicate ids. Images without any caption are left out (with a warning). An image that
fails to decode, or any other error of the pipeline, raises :class:`SampleError` naming the
sample (file, image id, caption id) when it is fetched.

:class:`ImageTextDataset` serves one item per caption (``items='pairs'``, training) or one
per image (``items='images'``: all its captions in ``texts`` for retrieval, ``text`` one of
them: the first in test mode, a random one per fetch otherwise). ``itm_negatives=True``
adds ``negative_text``: a caption of another image, fixed per item (for ITM accuracy).
Pack the results with :class:`vlkd.datasets.captions.PackImageTextInputs`.
"""
import json
import os.path as osp
import random
from typing import Dict, List, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from vlkd.registry import DATASETS

__all__ = ['SampleError', 'run_pipeline', 'describe_sample', 'check_caption',
           'read_annotation_json', 'load_coco_captions', 'ImageTextDataset']

# keys of a data info that identify a sample, in the order they are reported
_SAMPLE_KEYS = ('img_path', 'frame_dir', 'region_file', 'img_id', 'video_id', 'caption_id',
                'crop_bbox', 'frame_inds')


class SampleError(RuntimeError):
    """A sample that cannot be loaded or transformed; the message names it and the cause."""


def describe_sample(info: dict) -> str:
    """'img_path=..., img_id=3, caption_id=12': what identifies a data info."""
    return ', '.join(f'{key}={info[key]}' for key in _SAMPLE_KEYS if info.get(key) is not None)


def run_pipeline(pipeline, info: dict, dataset: str):
    """``pipeline(info)``; any error is re-raised as a :class:`SampleError` naming the sample
    and the dataset, with the original error chained."""
    try:
        return pipeline(info)
    except SampleError:
        raise
    except Exception as err:
        raise SampleError(f'{dataset}: cannot load the sample ({describe_sample(info)}): '
                          f'{type(err).__name__}: {err}') from err


def check_caption(caption, where: str) -> str:
    """``caption`` if it is a string with a word in it; else an error naming ``where``."""
    if not isinstance(caption, str):
        raise ValueError(f'{where}: the caption is a {type(caption).__name__} ({caption!r}), '
                         'not a string.')
    if not caption.strip():
        raise ValueError(f'{where}: the caption is empty ({caption!r}); every caption needs '
                         'at least one word. Fix or remove this annotation.')
    return caption


def read_annotation_json(path: str, hint: str = '') -> dict:
    """The contents of a json annotation file; errors name the file (``hint``: how to make
    a missing one)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Annotation file {path} does not exist. {hint}'.strip())
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'Annotation file {path} is not valid json: {err}') from err


def load_coco_captions(ann_file: str, img_dir: str = '', hint: str = '') -> List[dict]:
    """Per image with at least one caption, in file order: ``img_path``, ``img_id``,
    ``height`` / ``width`` (if given), ``captions`` and ``caption_ids`` (annotation order).

    Raises errors naming the annotation for everything the module docstring lists;
    ``hint`` (how to make the file) is added to the missing-file error.
    """
    data = read_annotation_json(ann_file, hint)
    for key in ('images', 'annotations'):
        if not isinstance(data.get(key), list):
            raise ValueError(f'{ann_file} is not a COCO captions file: it needs lists '
                             f'"images" and "annotations" (it has keys {sorted(data)}).')
    images: Dict[int, dict] = {}
    for index, img in enumerate(data['images']):
        missing = [k for k in ('id', 'file_name') if k not in img]
        if missing:
            raise ValueError(f'{ann_file}: images[{index}] lacks {missing}.')
        if img['id'] in images:
            raise ValueError(f'{ann_file}: image id {img["id"]} is listed twice.')
        info = dict(img_path=osp.join(img_dir, img['file_name']), img_id=img['id'],
                    captions=[], caption_ids=[])
        info.update({k: img[k] for k in ('height', 'width') if k in img})
        images[img['id']] = info
    seen = set()
    for index, ann in enumerate(data['annotations']):
        missing = [k for k in ('id', 'image_id', 'caption') if k not in ann]
        if missing:
            raise ValueError(f'{ann_file}: annotations[{index}] lacks {missing}.')
        if ann['id'] in seen:
            raise ValueError(f'{ann_file}: annotation id {ann["id"]} is used twice.')
        seen.add(ann['id'])
        image = images.get(ann['image_id'])
        if image is None:
            raise ValueError(f'{ann_file}: annotation {ann["id"]} refers to image '
                             f'{ann["image_id"]}, which is not in "images".')
        where = f'{ann_file}: annotation {ann["id"]} (image {image["img_path"]})'
        image['captions'].append(check_caption(ann['caption'], where))
        image['caption_ids'].append(ann['id'])
    without = [img['img_id'] for img in images.values() if not img['captions']]
    if without:
        print_log(f'{ann_file}: {len(without)} images have no caption and are left out '
                  f'(ids {without[:5]}{" ..." if len(without) > 5 else ""}).',
                  logger='current')
    return [img for img in images.values() if img['captions']]


@DATASETS.register_module()
class ImageTextDataset(BaseDataset):
    """Images with captions from a COCO-captions file (see the module docstring).

    Args:
        ann_file: the captions json.
        data_prefix: ``dict(img='images/')``: the folder of the ``file_name`` paths.
        items: ``'pairs'`` (one item per caption: ``text``, ``caption_id``) or ``'images'``
            (one per image: ``texts``, ``caption_ids`` and one ``text``).
        itm_negatives: add ``negative_text``, a caption of another image that differs from
            every caption of this one, the same at every fetch (seeded by ``seed``).
        seed: seed of the negatives.
    """

    ITEMS = ('pairs', 'images')

    def __init__(self, ann_file: str, items: str = 'pairs', itm_negatives: bool = False,
                 seed: int = 0, **kwargs):
        if items not in self.ITEMS:
            raise ValueError(f'items must be one of {self.ITEMS}, got {items!r}.')
        self.items = items
        self.itm_negatives = itm_negatives
        self.seed = seed
        super().__init__(ann_file=ann_file, **kwargs)

    def load_images(self) -> List[dict]:
        """The images with their captions (:func:`load_coco_captions`)."""
        return load_coco_captions(self.ann_file, self.data_prefix.get('img', ''))

    def load_data_list(self) -> List[dict]:
        images = self.load_images()
        if self.itm_negatives and len(images) < 2:
            raise ValueError(f'{self.ann_file}: itm_negatives needs captions of at least two '
                             'images.')
        if self.items == 'images':
            return [dict(img, texts=img.pop('captions')) for img in images]
        data_list = []
        for img in images:
            captions, ids = img.pop('captions'), img.pop('caption_ids')
            data_list += [dict(img, text=text, caption_id=cid, texts=captions)
                          for text, cid in zip(captions, ids)]
        return data_list

    def negative_caption(self, idx: int, own: Sequence[str]) -> str:
        """A caption of another item that is none of ``own``, fixed by ``seed`` and ``idx``."""
        rng = random.Random(self.seed * 1_000_003 + idx)
        for _ in range(100):
            other = self.get_data_info(rng.randrange(len(self)))
            text = rng.choice(other['texts'])
            if text not in own:
                return text
        raise ValueError(f'{self.ann_file}: found no caption unlike those of item {idx} '
                         f'({own[:2]}...) in 100 draws; the captions barely differ.')

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if self.items == 'images':
            info['text'] = info['texts'][0] if self.test_mode else random.choice(info['texts'])
        if self.itm_negatives:
            info['negative_text'] = self.negative_caption(idx, info['texts'])
        if self.items == 'pairs':
            info.pop('texts')
        return run_pipeline(self.pipeline, info, type(self).__name__)
