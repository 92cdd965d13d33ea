"""Image-text data of vlkd-shapes: scenes with captions, object crops, and their transforms."""
import json
import random

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.datasets.captions import (CropRegion, PackImageTextInputs, RandomFlipImageText,
                                    ShapesCaptionDataset, ShapesObjectCropDataset)
from vlkd.datasets.shapes import SHAPES_CLASSES
from vlkd.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='CropRegion', scale_range=(1.0, 1.6), max_shift=0.1),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='RandomFlipImageText', prob=0.5),
    dict(type='PackImageTextInputs', meta_keys=('img_id', 'text', 'crop_bbox')),
]


def caption_dataset(root, **kwargs):
    init_default_scope('vlkd')
    return DATASETS.build(dict(
        type='ShapesCaptionDataset', data_root=str(root),
        ann_file='annotations/captions_train.json',
        instances_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'), pipeline=PIPELINE, **kwargs))


def coco(root, name):
    return json.loads((root / 'annotations' / name).read_text())


def test_scenes_come_with_one_of_their_captions(shapes_root):
    dataset = caption_dataset(shapes_root, crop_prob=0.0)
    captions = coco(shapes_root, 'captions_train.json')['annotations']
    assert len(dataset) == 6
    random.seed(0)
    seen = set()
    for _ in range(8):
        item = dataset[2]
        sample = item['data_samples']
        assert item['inputs'].shape == (3, 32, 32) and item['inputs'].dtype == torch.uint8
        own = {c['caption'] for c in captions if c['image_id'] == sample.img_id}
        # a flip swaps left and right in the caption; undo it to find the original
        unflipped = {sample.text, RandomFlipImageText(prob=1.0)(dict(
            img=np.zeros((1, 1, 3), np.uint8), text=sample.text))['text']}
        assert own & unflipped
        assert 'gt_label' not in sample and 'crop_bbox' not in sample
        seen.add(sample.text)
    assert len(seen) > 1  # a caption is drawn per fetch, not fixed per image


def test_crops_come_with_a_caption_of_their_object(shapes_root):
    dataset = caption_dataset(shapes_root, crop_prob=1.0, color_prob=1.0)
    instances = coco(shapes_root, 'instances_train.json')['annotations']
    random.seed(1)
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        x1, y1, x2, y2 = sample.crop_bbox
        objects = [a for a in instances if a['image_id'] == sample.img_id
                   and a['bbox'] == [x1, y1, x2 - x1, y2 - y1]]
        assert len(objects) == 1
        name = SHAPES_CLASSES[objects[0]['category_id'] - 1]
        assert int(sample.gt_label) == objects[0]['category_id'] - 1
        assert f"{objects[0]['color']} {name}" in sample.text


def test_object_captions_vary_and_name_colour_as_asked(shapes_root):
    random.seed(2)
    dataset = caption_dataset(shapes_root, crop_prob=1.0, color_prob=0.0)
    texts = {dataset.object_caption('star', 'red') for _ in range(50)}
    assert len(texts) > 3 and all('star' in t and 'red' not in t for t in texts)
    dataset.color_prob = 1.0
    assert all('red star' in dataset.object_caption('star', 'red') for _ in range(20))
    with pytest.raises(ValueError, match='crop_prob'):
        caption_dataset(shapes_root, crop_prob=1.5)


def test_object_crop_dataset_has_every_object_once(shapes_root):
    init_default_scope('vlkd')
    dataset = ShapesObjectCropDataset(
        data_root=str(shapes_root), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'), test_mode=True, pipeline=PIPELINE[:1] + [
            dict(type='CropRegion'), dict(type='PackImageTextInputs')])
    instances = coco(shapes_root, 'instances_val.json')['annotations']
    assert len(dataset) == len(instances)
    for index, ann in enumerate(instances):
        item = dataset[index]
        x, y, w, h = ann['bbox']
        assert item['data_samples'].crop_bbox == [x, y, x + w, y + h]
        assert item['inputs'].shape == (3, h, w)  # no jitter: exactly the box
        assert int(item['data_samples'].gt_label) == ann['category_id'] - 1


def test_missing_files_say_how_to_make_the_data(tmp_path):
    with pytest.raises(FileNotFoundError, match='make_shapes'):
        caption_dataset(tmp_path)


def test_crop_region_pads_outside_with_black():
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3) + 1
    out = CropRegion()(dict(img=img, crop_bbox=[2, 3, 7, 9]))
    np.testing.assert_array_equal(out['img'], img[3:9, 2:7])
    assert out['img_shape'] == (6, 5)
    # the box [2, 3, 8, 9] doubled about its centre (5, 6) is [-1, 0, 11, 12]: it reaches
    # one column past the left edge and two rows past the bottom
    crop = CropRegion(scale_range=(2.0, 2.0))(dict(img=img, crop_bbox=[2, 3, 8, 9]))['img']
    assert crop.shape == (12, 12, 3)
    np.testing.assert_array_equal(crop[:10, 1:], img[:10, :11])
    assert (crop[:, 0] == 0).all() and (crop[10:] == 0).all()
    assert CropRegion()(dict(img=img))['img'] is img  # scenes pass unchanged


def test_flip_mirrors_pixels_and_swaps_sides():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = RandomFlipImageText(prob=1.0)(dict(
        img=img.copy(), text='a red star to the left of a blue circle, right?'))
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    assert out['text'] == 'a red star to the right of a blue circle, left?'
    kept = RandomFlipImageText(prob=0.0)(dict(img=img.copy(), text='left'))
    assert kept['text'] == 'left'


def test_pack_puts_text_in_metainfo_and_label_in_data():
    packed = PackImageTextInputs()(dict(img=np.zeros((4, 5, 3), np.uint8), text='a star',
                                        img_id=3, gt_label=7))
    assert packed['inputs'].shape == (3, 4, 5)
    sample = packed['data_samples']
    assert sample.text == 'a star' and sample.img_id == 3
    assert sample.gt_label.item() == 7 and 'gt_label' in sample.keys()
