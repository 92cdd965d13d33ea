"""ShapesDataset (mmdet) and ShapesSegDataset (mmseg) on generated vlkd-shapes."""
import numpy as np
import pytest

import vlkd  # noqa: F401  (installs the mmcv compat layer before mmdet / mmseg imports)
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets.transforms import LoadAnnotations as DetLoadAnnotations
from mmseg.datasets.transforms import LoadAnnotations as SegLoadAnnotations
from PIL import Image
from pycocotools.coco import COCO

from vlkd.datasets import ShapesDataset, ShapesSegDataset
from vlkd.datasets.shapes import (SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_NOVEL_CLASSES,
                                  generate_shapes)
from vlkd.registry import DATASETS


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return generate_shapes(tmp_path_factory.mktemp('shapes') / 'root', seed=0, num_train=12,
                           num_val=4, num_test=2)


def _det(root, split, ann='', **kwargs):
    return ShapesDataset(data_root=str(root), ann_file=f'annotations/instances_{ann or split}.json',
                         data_prefix=dict(img=f'images/{split}/'), **kwargs)


def test_registered_with_open_vocabulary_metainfo(root):
    dataset = DATASETS.build(dict(type='ShapesDataset', data_root=str(root),
                                  ann_file='annotations/instances_val.json',
                                  data_prefix=dict(img='images/val/'), test_mode=True))
    assert isinstance(dataset, ShapesDataset) and len(dataset) == 4
    assert dataset.metainfo['classes'] == SHAPES_CLASSES
    assert dataset.metainfo['base_classes'] == list(SHAPES_BASE_CLASSES)
    assert dataset.metainfo['novel_classes'] == list(SHAPES_NOVEL_CLASSES)
    assert DATASETS.get('ShapesSegDataset') is ShapesSegDataset


def test_all_classes_labels_are_category_ids_minus_one(root):
    dataset = _det(root, 'val', test_mode=True)
    coco = COCO(str(root / 'annotations' / 'instances_val.json'))
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[info['img_id']]))
        assert [i['bbox_label'] for i in info['instances']] == [a['category_id'] - 1 for a in anns]
        x, y, w, h = anns[0]['bbox']
        assert info['instances'][0]['bbox'] == [x, y, x + w, y + h]


def test_base_classes_map_to_labels_in_base_order(root):
    dataset = _det(root, 'train', ann='train_base', metainfo=dict(classes=SHAPES_BASE_CLASSES))
    coco = COCO(str(root / 'annotations' / 'instances_train.json'))  # all classes
    seen = set()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[info['img_id']]))
        base_names = [SHAPES_CLASSES[a['category_id'] - 1] for a in anns]
        base_names = [n for n in base_names if n in SHAPES_BASE_CLASSES]
        labels = [i['bbox_label'] for i in info['instances']]
        assert [SHAPES_BASE_CLASSES[label] for label in labels] == base_names
        seen.update(labels)
    assert seen <= set(range(9)) and len(seen) >= 5


def test_class_list_out_of_order_is_refused(root):
    with pytest.raises(ValueError, match='in that order'):
        _det(root, 'val', metainfo=dict(classes=('star', 'circle')))
    with pytest.raises(ValueError, match='must be distinct names from SHAPES_CLASSES'):
        _det(root, 'val', metainfo=dict(classes=('circle', 'dog')))


def test_missing_annotation_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='tools/make_shapes.py'):
        _det(tmp_path, 'val')


def test_rle_masks_load_with_mmdet_transforms(root):
    dataset = _det(root, 'val', test_mode=True,
                   pipeline=[LoadImageFromFile(),
                             DetLoadAnnotations(with_bbox=True, with_mask=True)])
    coco = COCO(str(root / 'annotations' / 'instances_val.json'))
    sample = dataset[0]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[sample['img_id']]))
    assert sample['img'].shape == (128, 128, 3)
    np.testing.assert_array_equal(sample['gt_masks'].masks,
                                  np.stack([coco.annToMask(a) for a in anns]))


def test_seg_dataset_base_classes_ignore_novel_pixels(root):
    dataset = ShapesSegDataset(
        data_root=str(root), data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
        metainfo=dict(classes=('background',) + SHAPES_BASE_CLASSES),
        pipeline=[LoadImageFromFile(), SegLoadAnnotations()])
    assert len(dataset) == 12
    # independent mapping: pixel value v = class index + 1 -> base label or 255
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[0] = 0
    for label, name in enumerate(SHAPES_BASE_CLASSES, start=1):
        lookup[SHAPES_CLASSES.index(name) + 1] = label
    saw_novel = False
    for index in range(len(dataset)):
        sample = dataset[index]
        raw = np.array(Image.open(sample['seg_map_path']))
        np.testing.assert_array_equal(sample['gt_seg_map'], lookup[raw])
        saw_novel |= bool((sample['gt_seg_map'] == 255).any())
    assert saw_novel


def test_seg_dataset_all_classes_and_missing_folder(root, tmp_path):
    dataset = ShapesSegDataset(data_root=str(root),
                               data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'))
    assert dataset.metainfo['classes'] == ('background',) + SHAPES_CLASSES
    assert len(dataset) == 4 and dataset.label_map is None
    with pytest.raises(FileNotFoundError, match='tools/make_shapes.py'):
        ShapesSegDataset(data_root=str(tmp_path),
                         data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'))
