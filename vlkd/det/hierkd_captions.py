"""A detection pipeline step that gives each training image one of its captions.

HierKD's global distillation contrasts an image with the teacher's embedding of a caption
of that image. Detection datasets (COCO instances files) carry no captions, so this step
reads the matching COCO captions file once (:func:`vlkd.datasets.image_text.
load_coco_captions`, which refuses empty captions) and, per fetch, puts one caption of the
image, drawn at random, in ``results['caption']``. Add ``'caption'`` to the ``meta_keys`` of
``PackDetInputs`` to find it in ``data_sample.metainfo['caption']``.

Place it after ``RandomFlip``: a horizontally flipped image gets its caption with "left" and
"right" exchanged (vlkd-shapes captions say "a star to the left of a circle"), a vertically
flipped one with "above" / "below" exchanged, so the caption still describes the pixels.
"""
import random
import re
from typing import Dict, List

from mmcv.transforms import BaseTransform

from vlkd.datasets.image_text import load_coco_captions
from vlkd.registry import TRANSFORMS

# word pairs a flip exchanges, per mmdet flip direction
_FLIP_SWAPS = {
    'horizontal': (('left', 'right'),),
    'vertical': (('above', 'below'),),
    'diagonal': (('left', 'right'), ('above', 'below')),
}


def flip_caption(caption: str, direction: str) -> str:
    """``caption`` as it reads after an image flip in ``direction`` (mmdet's names): the
    whole words of each pair of ``_FLIP_SWAPS[direction]`` exchanged."""
    if direction not in _FLIP_SWAPS:
        raise ValueError(f'Unknown flip direction {direction!r}; expected one of '
                         f'{sorted(_FLIP_SWAPS)}.')
    for a, b in _FLIP_SWAPS[direction]:
        swap = {a: b, b: a}
        caption = re.sub(rf'\b({a}|{b})\b', lambda m: swap[m.group(1)], caption)
    return caption


@TRANSFORMS.register_module()
class AttachCaption(BaseTransform):
    """Adds ``results['caption']``: one caption of ``results['img_id']``, drawn at random.

    Args:
        ann_file: COCO captions file of the same images (e.g.
            ``data/shapes/annotations/captions_train.json``).
        follow_flip: exchange left / right (above / below) words when the pipeline flipped
            the image (``results['flip']``, ``results['flip_direction']``).
    """

    def __init__(self, ann_file: str, follow_flip: bool = True):
        self.ann_file = ann_file
        self.follow_flip = follow_flip
        self.captions: Dict[int, List[str]] = {
            image['img_id']: image['captions'] for image in load_coco_captions(ann_file)}

    def transform(self, results: dict) -> dict:
        if 'img_id' not in results:
            raise KeyError('AttachCaption needs results["img_id"] (set by the detection '
                           f'dataset); got keys {sorted(results)}.')
        img_id = results['img_id']
        if img_id not in self.captions:
            raise KeyError(f'Image {img_id} ({results.get("img_path", "?")}) has no caption in '
                           f'{self.ann_file}: the captions file must cover every training image.')
        caption = random.choice(self.captions[img_id])
        if self.follow_flip and results.get('flip', False):
            caption = flip_caption(caption, results['flip_direction'])
        results['caption'] = caption
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(ann_file={self.ann_file!r}, '
                f'follow_flip={self.follow_flip})')
