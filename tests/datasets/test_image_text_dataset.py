"""ImageTextDataset (COCO captions) and the shapes caption datasets: items, negatives,
UniCL labels, and bad input (empty captions, broken annotation files, undecodable images)
rejected with errors that name the sample."""
import json
import random
import shutil

import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.datasets.image_text import SampleError
from vlkd.registry import DATASETS

PIPELINE = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(16, 16), keep_ratio=False),
            dict(type='PackImageTextInputs')]


def build(**kwargs):
    init_default_scope('vlkd')
    return DATASETS.build(dict(type='ImageTextDataset', pipeline=PIPELINE, **kwargs))


def coco_captions(shapes_root, split='val'):
    return json.loads((shapes_root / 'annotations' / f'captions_{split}.json').read_text())


def write_copy(tmp_path, shapes_root, edit=None, split='val'):
    """A copy of the shapes val captions and images that ``edit(data)`` may change."""
    shutil.copytree(shapes_root / 'images' / split, tmp_path / 'images')
    data = coco_captions(shapes_root, split)
    if edit is not None:
        edit(data)
    (tmp_path / 'captions.json').write_text(json.dumps(data))
    return dict(data_root=str(tmp_path), ann_file='captions.json',
                data_prefix=dict(img='images/'))


def test_pairs_and_images(shapes_root):
    data = coco_captions(shapes_root)
    files = {img['id']: img['file_name'] for img in data['images']}
    paths = dict(data_root=str(shapes_root), ann_file='annotations/captions_val.json',
                 data_prefix=dict(img='images/val/'))

    pairs = build(**paths)
    assert len(pairs) == len(data['annotations'])
    for index, ann in enumerate(data['annotations']):
        item = pairs[index]
        sample = item['data_samples']
        assert item['inputs'].shape == (3, 16, 16)
        assert (sample.text, sample.caption_id, sample.img_id) == (
            ann['caption'], ann['id'], ann['image_id'])
        assert sample.img_path.endswith(files[ann['image_id']])
        assert 'texts' not in sample

    images = build(items='images', test_mode=True, **paths)
    assert len(images) == len(data['images'])
    for index, img in enumerate(data['images']):
        sample = images[index]['data_samples']
        own = [a['caption'] for a in data['annotations'] if a['image_id'] == img['id']]
        assert sample.img_id == img['id'] and sample.texts == own
        assert sample.text == own[0]  # test mode: the first caption

    random.seed(0)
    train = build(items='images', **paths)
    drawn = {train[0]['data_samples'].text for _ in range(20)}
    assert len(drawn) > 1 and drawn <= set(train[0]['data_samples'].texts)


def test_itm_negatives_are_other_images_captions_fixed_per_item(shapes_root):
    data = coco_captions(shapes_root)
    dataset = build(data_root=str(shapes_root), ann_file='annotations/captions_val.json',
                    data_prefix=dict(img='images/val/'), items='images', test_mode=True,
                    itm_negatives=True, seed=3)
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        others = {a['caption'] for a in data['annotations'] if a['image_id'] != sample.img_id}
        assert sample.negative_text not in sample.texts and sample.negative_text in others
        assert dataset[index]['data_samples'].negative_text == sample.negative_text
    other_seed = build(data_root=str(shapes_root), ann_file='annotations/captions_val.json',
                       data_prefix=dict(img='images/val/'), items='images', test_mode=True,
                       itm_negatives=True, seed=4)
    assert [other_seed[i]['data_samples'].negative_text for i in range(len(dataset))] != \
        [dataset[i]['data_samples'].negative_text for i in range(len(dataset))]


@pytest.mark.parametrize('caption', ['', '   \n', None])
def test_empty_caption_is_named(tmp_path, shapes_root, caption):
    def blank(data):
        data['annotations'][3]['caption'] = caption

    paths = write_copy(tmp_path, shapes_root, blank)
    data = json.loads((tmp_path / 'captions.json').read_text())
    bad = data['annotations'][3]
    file_name = next(i['file_name'] for i in data['images'] if i['id'] == bad['image_id'])
    with pytest.raises(ValueError, match=rf"annotation {bad['id']} \(image .*{file_name}\)"):
        build(**paths)


@pytest.mark.parametrize('edit, match', [
    (lambda d: d['annotations'][0].update(image_id=999), 'refers to image 999'),
    (lambda d: d['annotations'][1].update(id=d['annotations'][0]['id']), 'used twice'),
    (lambda d: d['annotations'][0].pop('caption'), r"annotations\[0\] lacks \['caption'\]"),
    (lambda d: d.pop('images'), 'not a COCO captions file'),
])
def test_broken_annotation_files_are_named(tmp_path, shapes_root, edit, match):
    with pytest.raises(ValueError, match=match):
        build(**write_copy(tmp_path, shapes_root, edit))


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.json does not exist'):
        build(data_root=str(tmp_path), ann_file='nothing.json')


@pytest.mark.parametrize('damage', ['truncate', 'empty', 'text'])
def test_undecodable_image_names_the_sample(tmp_path, shapes_root, damage):
    paths = write_copy(tmp_path, shapes_root)
    data = json.loads((tmp_path / 'captions.json').read_text())
    image = data['images'][1]
    path = tmp_path / 'images' / image['file_name']
    content = path.read_bytes()
    path.write_bytes({'truncate': content[:len(content) // 2], 'empty': b'',
                      'text': b'not an image'}[damage])
    dataset = build(**paths)
    index = next(i for i, a in enumerate(data['annotations']) if a['image_id'] == image['id'])
    caption_id = data['annotations'][index]['id']
    with pytest.raises(SampleError, match=rf"ImageTextDataset.*{image['file_name']}, "
                                          rf"img_id={image['id']}, caption_id={caption_id}"):
        dataset[index]
    dataset[0 if index else len(dataset) - 1]  # the other samples still load


def test_shapes_caption_dataset_rejects_blank_captions_and_bad_images(tmp_path, shapes_root):
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_root, root)
    captions = json.loads((root / 'annotations' / 'captions_train.json').read_text())
    bad = captions['annotations'][5]
    bad['caption'] = ' '
    (root / 'annotations' / 'captions_train.json').write_text(json.dumps(captions))
    cfg = dict(type='ShapesCaptionDataset', data_root=str(root),
               ann_file='annotations/captions_train.json',
               instances_file='annotations/instances_train.json',
               data_prefix=dict(img='images/train/'), pipeline=PIPELINE)
    init_default_scope('vlkd')
    with pytest.raises(ValueError, match=f"annotation {bad['id']} .*is empty"):
        DATASETS.build(cfg)

    bad['caption'] = 'a red star'
    (root / 'annotations' / 'captions_train.json').write_text(json.dumps(captions))
    image = captions['images'][0]
    (root / 'images' / 'train' / image['file_name']).write_bytes(b'\x89PNG broken')
    dataset = DATASETS.build(cfg)
    with pytest.raises(SampleError, match=f"ShapesCaptionDataset.*{image['file_name']}"):
        dataset[0]

    cfg.pop('instances_file')
    crops = DATASETS.build(dict(cfg, type='ShapesObjectCropDataset',
                                ann_file='annotations/instances_train.json'))
    with pytest.raises(SampleError, match=f"ShapesObjectCropDataset.*{image['file_name']}"):
        crops[0]


def test_unicl_labels_of_crops_and_scenes(shapes_root):
    init_default_scope('vlkd')
    cfg = dict(type='ShapesCaptionDataset', data_root=str(shapes_root),
               ann_file='annotations/captions_train.json',
               instances_file='annotations/instances_train.json',
               data_prefix=dict(img='images/train/'),
               pipeline=[dict(type='LoadImageFromFile'), dict(type='CropRegion'),
                         dict(type='PackImageTextInputs')])
    random.seed(0)
    crops = DATASETS.build(dict(cfg, crop_prob=1.0))
    scenes = DATASETS.build(dict(cfg, crop_prob=0.0))
    captions = coco_captions(shapes_root, 'train')['annotations']
    for index in range(len(crops)):
        crop = crops[index]['data_samples']
        assert crop.unicl_label.dtype == torch.int64
        assert int(crop.unicl_label) == int(crop.gt_label) < 12
        scene = scenes[index]['data_samples']
        assert int(scene.unicl_label) == 12 + scene.img_id
        assert next(c['caption'] for c in captions if c['id'] == scene.caption_id) == scene.text
