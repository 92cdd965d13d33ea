"""OVCocoDataset and OVLVISV1Dataset on tiny files in the official formats: labels by class
name, image paths, class groups, and the errors that keep novel boxes out of training."""
import json

import pytest
import torch

import vlkd  # noqa: F401  (installs the compat layer before mmdet)
from ov_detection_data import (COCO_TRAIN, COCO_VAL, LVIS_NAMES, LVIS_TRAIN, LVIS_VAL,
                               write_coco_2017, write_lvis_v1, write_split_files)
from vlkd.datasets.ov_splits import (OV_COCO_BASE_CLASSES, OV_COCO_CLASSES,
                                     OV_COCO_NOVEL_CLASSES, OV_LVIS_BASE_CLASSES,
                                     AnnotationFormatError)
from vlkd.registry import DATASETS

PIPELINE = [dict(type='mmdet.LoadImageFromFile'),
            dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape'))]


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = write_coco_2017(tmp_path_factory.mktemp('data') / 'coco')
    write_split_files(coco_root=root)
    return root


@pytest.fixture(scope='module')
def lvis_root(tmp_path_factory):
    root = write_lvis_v1(tmp_path_factory.mktemp('data') / 'lvis')
    write_split_files(lvis_root=root)
    return root


def build(type_, root, ann_file, img, **kwargs):
    return DATASETS.build(dict(type=type_, data_root=str(root), ann_file=ann_file,
                               data_prefix=dict(img=img), pipeline=PIPELINE, **kwargs))


def samples(dataset):
    """{image id: [(class name, [x1, y1, x2, y2]), ...]} of the packed samples."""
    out = {}
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        classes = dataset.metainfo['classes']
        out[sample.img_id] = [(classes[label], box) for label, box in zip(
            sample.gt_instances.labels.tolist(), sample.gt_instances.bboxes.tensor.tolist())]
        assert sample.gt_instances.masks.to_ndarray().shape[0] == len(out[sample.img_id])
    return out


def table(images, keep, crowd=False):
    """The same, written from the fixture table: boxes of the kept classes, in file order."""
    out = {}
    for image_id, _, _, _, objects in images:
        boxes = [(obj[0], [obj[1][0], obj[1][1], obj[1][0] + obj[1][2], obj[1][1] + obj[1][3]])
                 for obj in objects if obj[0] in keep and (crowd or len(obj) < 3 or not obj[2])]
        if boxes:
            out[image_id] = boxes
    return out


def test_ov_coco_train_and_val(coco_root):
    train = build('OVCocoDataset', coco_root, 'annotations/instances_train2017_ov_base.json',
                  'train2017/', metainfo=dict(classes=OV_COCO_BASE_CLASSES))
    assert samples(train) == table(COCO_TRAIN, OV_COCO_BASE_CLASSES)  # crowd boxes: ignored
    val = build('OVCocoDataset', coco_root, 'annotations/instances_val2017_ov.json', 'val2017/',
                test_mode=True)
    assert val.metainfo['classes'] == OV_COCO_CLASSES
    assert val.metainfo['base_classes'] == list(OV_COCO_BASE_CLASSES)
    assert val.metainfo['novel_classes'] == list(OV_COCO_NOVEL_CLASSES)
    assert len(val.metainfo['palette']) == 65
    assert samples(val) == table(COCO_VAL, OV_COCO_CLASSES)
    assert val[0]['data_samples'].img_path.endswith('val2017/000000000011.jpg')


def test_labels_follow_the_class_list_order(coco_root):
    reordered = ['dog', 'umbrella', 'person', 'cake', 'bicycle'] + [
        c for c in OV_COCO_CLASSES if c not in ('dog', 'umbrella', 'person', 'cake', 'bicycle')]
    val = build('OVCocoDataset', coco_root, 'annotations/instances_val2017_ov.json', 'val2017/',
                test_mode=True, metainfo=dict(classes=reordered))
    assert samples(val) == table(COCO_VAL, OV_COCO_CLASSES)  # names, through the new labels
    labels = {val.metainfo['classes'][i] for i in range(5)}
    assert labels == {'dog', 'umbrella', 'person', 'cake', 'bicycle'}
    first = val[0]['data_samples'].gt_instances.labels.tolist()
    assert first == [reordered.index('person'), reordered.index('dog')]


def test_novel_boxes_in_training_are_an_error(coco_root):
    with pytest.raises(AnnotationFormatError, match=r'not among the 48 classes .*make_ov_split'):
        build('OVCocoDataset', coco_root, 'annotations/instances_train2017.json', 'train2017/',
              metainfo=dict(classes=OV_COCO_BASE_CLASSES))


def test_missing_classes_and_file(coco_root):
    with pytest.raises(AnnotationFormatError, match=r"1 of the 49 classes are not categories of .*: 'cat'"):
        build('OVCocoDataset', coco_root, 'annotations/instances_train2017_ov_base.json',
              'train2017/', metainfo=dict(classes=list(OV_COCO_BASE_CLASSES) + ['cat']))
    with pytest.raises(AnnotationFormatError, match=r"'persn' \(did you mean 'person'\?\)"):
        build('OVCocoDataset', coco_root, 'annotations/instances_val2017_ov.json', 'val2017/',
              metainfo=dict(classes=['persn', 'dog']))
    with pytest.raises(FileNotFoundError, match=r'make_ov_split.py coco'):
        build('OVCocoDataset', coco_root, 'annotations/nothing.json', 'val2017/')


def test_ov_lvis_val_and_train(lvis_root):
    val = build('OVLVISV1Dataset', lvis_root, 'annotations/lvis_v1_val.json', '', test_mode=True)
    assert list(val.metainfo['classes']) == list(LVIS_NAMES)
    assert samples(val) == table(LVIS_VAL, LVIS_NAMES)
    # LVIS val holds COCO train images: paths come from coco_url
    paths = {val[i]['data_samples'].img_id: val[i]['data_samples'].img_path
             for i in range(len(val))}
    assert paths[202].endswith('train2017/000000000202.jpg')
    assert paths[201].endswith('val2017/000000000201.jpg')
    assert len(val.metainfo['rare_classes']) == 337 and len(val.metainfo['base_classes']) == 866

    train = build('OVLVISV1Dataset', lvis_root, 'annotations/lvis_v1_train_ov_base.json', '',
                  metainfo=dict(classes=OV_LVIS_BASE_CLASSES),
                  filter_cfg=dict(filter_empty_gt=True, min_size=0))
    got = samples(train)
    assert got == table(LVIS_TRAIN, OV_LVIS_BASE_CLASSES)  # 102 (only banjo), 105: filtered
    assert {name for boxes in got.values() for name, _ in boxes} == {
        'apple', 'aerosol_can', 'person', 'airplane', 'alcohol'}  # no applesauce, no banjo
    labels = torch.cat([train[i]['data_samples'].gt_instances.labels for i in range(len(train))])
    assert int(labels.max()) < 866


def test_ov_lvis_rare_boxes_and_wrong_frequencies_are_errors(lvis_root, tmp_path):
    with pytest.raises(AnnotationFormatError, match=r"3 annotations .*'banjo'.*make_ov_split"):
        build('OVLVISV1Dataset', lvis_root, 'annotations/lvis_v1_train.json', '',
              metainfo=dict(classes=OV_LVIS_BASE_CLASSES))
    data = json.loads((lvis_root / 'annotations/lvis_v1_val.json').read_text())
    data['categories'][12]['frequency'] = 'f'  # applesauce is rare in LVIS v1
    (tmp_path / 'v05.json').write_text(json.dumps(data))
    with pytest.raises(AnnotationFormatError, match=r"'applesauce' is 'f'.*LVIS v1"):
        build('OVLVISV1Dataset', tmp_path, 'v05.json', '', test_mode=True)


def test_class_group_selects_the_classes(coco_root, lvis_root):
    train = build('OVCocoDataset', coco_root, 'annotations/instances_train2017_ov_base.json',
                  'train2017/', class_group='base')
    assert list(train.metainfo['classes']) == list(OV_COCO_BASE_CLASSES)
    assert samples(train) == table(COCO_TRAIN, OV_COCO_BASE_CLASSES)
    lvis = build('OVLVISV1Dataset', lvis_root, 'annotations/lvis_v1_train_ov_base.json', '',
                 class_group='base')
    assert list(lvis.metainfo['classes']) == list(OV_LVIS_BASE_CLASSES)
    with pytest.raises(ValueError, match=r"unknown class_group 'seen'; choose one of \['all', "
                                         r"'base', 'novel'\]"):
        build('OVCocoDataset', coco_root, 'annotations/instances_val2017_ov.json', 'val2017/',
              class_group='seen')
    with pytest.raises(ValueError, match='not both'):
        build('OVCocoDataset', coco_root, 'annotations/instances_val2017_ov.json', 'val2017/',
              class_group='base', metainfo=dict(classes=['dog']))
