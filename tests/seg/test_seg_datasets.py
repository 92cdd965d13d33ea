"""Segmentation datasets on tiny files in the official formats: labels against values read
with PIL and mapped by independent rules (mmseg's COCO-Stuff converter table), zero-shot
ignoring, and the errors for bad masks."""
import importlib.util
from pathlib import Path

import mmseg
import numpy as np
import pytest
from PIL import Image

import vlkd  # noqa: F401
from vlkd.datasets import (ADE20KOpenVocabDataset, COCOStuffZeroShotDataset,
                           PascalContext59OpenVocabDataset, PascalVOCZeroShotDataset,
                           SegAnnotationError, ShapesZeroShotSegDataset)
from vlkd.datasets.shapes import SHAPES_CLASSES, SHAPES_NOVEL_CLASSES
from vlkd.registry import DATASETS

from seg_benchmark_data import (write_ade20k, write_coco_stuff, write_pascal_context,
                              write_voc)

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadSegAnnotations')]


def read_png(path) -> np.ndarray:
    return np.array(Image.open(path))


def loaded(dataset):
    """(gt_seg_map, raw values read with PIL) of every sample."""
    for i in range(len(dataset)):
        result = dataset[i]
        yield result['gt_seg_map'], read_png(result['seg_map_path'])


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    return write_voc(tmp_path_factory.mktemp('voc') / 'VOC2012')


def voc(root, **kwargs):
    return PascalVOCZeroShotDataset(
        data_root=str(root), ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=PIPELINE, **kwargs)


def test_voc_palette_pngs_load_as_class_ids(voc_root):
    dataset = voc(voc_root)
    assert len(dataset) == 3 and len(dataset.metainfo['classes']) == 21
    for gt, raw in loaded(dataset):
        assert gt.dtype == np.uint8 and 0 < (raw == 255).sum() < raw.size
        np.testing.assert_array_equal(gt, raw)


def test_voc_zero_shot_split_ignores_the_unseen_pixels(voc_root):
    dataset = voc(voc_root, ignore_classes=list(dataset_unseen()))
    mmseg_names = mmseg.datasets.PascalVOCDataset.METAINFO['classes']
    unseen_ids = [mmseg_names.index(n) for n in ('pottedplant', 'sheep', 'sofa', 'train',
                                                 'tvmonitor')]
    assert dataset.metainfo['unseen_classes'] == dataset_unseen()
    for gt, raw in loaded(dataset):
        expected = np.where(np.isin(raw, unseen_ids), 255, raw)
        assert np.isin(raw, unseen_ids).any()
        np.testing.assert_array_equal(gt, expected)


def dataset_unseen():
    return ('potted plant', 'sheep', 'sofa', 'train', 'tv monitor')


def test_voc_subset_of_classes_renumbers_like_mmseg(voc_root):
    seen = [c for c in PascalVOCZeroShotDataset.METAINFO['classes'] if c not in dataset_unseen()]
    dataset = voc(voc_root, metainfo=dict(classes=seen))
    for gt, raw in loaded(dataset):
        full = PascalVOCZeroShotDataset.METAINFO['classes']
        lookup = {i: (seen.index(n) if n in seen else 255) for i, n in enumerate(full)}
        lookup[255] = 255
        np.testing.assert_array_equal(gt, np.vectorize(lookup.get)(raw))


def mmseg_coco_stuff_converter():
    """mmseg's own conversion script (shipped in the package): its clsID_to_trID table."""
    path = Path(mmseg.__file__).parent / '.mim/tools/dataset_converters/coco_stuff164k.py'
    spec = importlib.util.spec_from_file_location('coco_stuff164k', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.clsID_to_trID


def test_coco_stuff_official_maps_match_mmseg_converter(tmp_path):
    root = write_coco_stuff(tmp_path / 'coco_stuff164k')
    table = mmseg_coco_stuff_converter()
    assert len(table) == 172 and table[255] == 255  # 171 classes and void
    dataset = COCOStuffZeroShotDataset(
        data_root=str(root), data_prefix=dict(img_path='images/train2017',
                                              seg_map_path='annotations/train2017'),
        pipeline=PIPELINE)
    assert len(dataset.metainfo['unseen_classes']) == 15
    assert len(set(dataset.metainfo['classes']) - set(dataset.metainfo['unseen_classes'])) == 156
    for gt, raw in loaded(dataset):
        expected = np.vectorize(lambda v: table.get(v, 255))(raw)
        np.testing.assert_array_equal(gt, expected)


def test_coco_stuff_gap_id_is_refused(tmp_path):
    root = write_coco_stuff(tmp_path / 'coco_stuff164k', splits=dict(val2017=1))
    mask_path = next((root / 'annotations' / 'val2017').glob('*.png'))
    mask = read_png(mask_path)
    mask[0, 0] = 11  # COCO category 12 ('street sign') was dropped: no class
    Image.fromarray(mask).save(mask_path)
    dataset = COCOStuffZeroShotDataset(
        data_root=str(root), data_prefix=dict(img_path='images/val2017',
                                              seg_map_path='annotations/val2017'),
        pipeline=PIPELINE)
    with pytest.raises(SegAnnotationError, match=r'pixel values \[11\] that are no label'):
        dataset[0]


@pytest.mark.parametrize('writer, make', [
    (write_ade20k, lambda root, pipeline: ADE20KOpenVocabDataset(
        data_root=str(root), data_prefix=dict(img_path='images/validation',
                                              seg_map_path='annotations/validation'),
        pipeline=pipeline)),
    (write_pascal_context, lambda root, pipeline: PascalContext59OpenVocabDataset(
        data_root=str(root), ann_file='ImageSets/SegmentationContext/val.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        pipeline=pipeline)),
], ids=['ade20k', 'pascal_context59'])
def test_zero_is_other_and_ignored(tmp_path, writer, make):
    dataset = make(writer(tmp_path / 'data'), PIPELINE)
    assert len(dataset) == 2 and dataset.metainfo['unseen_classes'] == ()
    for gt, raw in loaded(dataset):
        assert (raw == 0).any()
        np.testing.assert_array_equal(gt, np.where(raw == 0, 255, raw.astype(int) - 1))


def test_ade_and_context_names_are_words():
    assert 'bed' in ADE20KOpenVocabDataset.METAINFO['classes']  # mmseg writes 'bed '
    assert 'potted plant' in PascalContext59OpenVocabDataset.METAINFO['classes']
    assert len(PascalContext59OpenVocabDataset.METAINFO['classes']) == 59


def test_shapes_zero_shot_dataset(shapes_root):
    dataset = DATASETS.build(dict(
        type='ShapesZeroShotSegDataset', data_root=str(shapes_root),
        data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
        ignore_classes=list(SHAPES_NOVEL_CLASSES), pipeline=PIPELINE))
    assert isinstance(dataset, ShapesZeroShotSegDataset)
    novel_values = [SHAPES_CLASSES.index(c) + 1 for c in SHAPES_NOVEL_CLASSES]
    for gt, raw in loaded(dataset):
        np.testing.assert_array_equal(gt, np.where(np.isin(raw, novel_values), 255, raw))


# -- errors --------------------------------------------------------------------------------
def test_label_outside_the_class_list_is_named(tmp_path):
    root = write_voc(tmp_path / 'VOC2012', splits=dict(train=1))
    mask_path = next((root / 'SegmentationClass').glob('*.png'))
    mask = Image.open(mask_path)
    values = np.array(mask)
    values[3, 4] = 25
    values[5, 6] = 40
    bad = Image.fromarray(values, mode='P')
    bad.putpalette(mask.getpalette())
    bad.save(mask_path)
    with pytest.raises(SegAnnotationError) as error:
        voc(root)[0]
    message = str(error.value)
    assert mask_path.name in message and '[25, 40]' in message and '0-20, 255' in message


def test_mask_of_another_size_than_its_image(tmp_path):
    root = write_voc(tmp_path / 'VOC2012', splits=dict(train=1))
    mask_path = next((root / 'SegmentationClass').glob('*.png'))
    Image.open(mask_path).crop((0, 0, 30, 24)).save(mask_path)
    with pytest.raises(SegAnnotationError, match=r'is 24x30 \(HxW\) but its image .* is 24x32'):
        voc(root)[0]


def test_colour_mask_is_refused(tmp_path):
    root = write_voc(tmp_path / 'VOC2012', splits=dict(train=1))
    mask_path = next((root / 'SegmentationClass').glob('*.png'))
    Image.open(mask_path).convert('RGB').save(mask_path)
    with pytest.raises(SegAnnotationError, match='not a colour image'):
        voc(root)[0]


def test_unknown_ignore_class_and_mmseg_loader_are_refused(voc_root):
    with pytest.raises(ValueError, match=r"'tvmonitor' \(did you mean 'tv monitor'\?\)"):
        voc(voc_root, ignore_classes=['tvmonitor'])
    with pytest.raises(ValueError, match='LoadSegAnnotations'):
        PascalVOCZeroShotDataset(
            data_root=str(voc_root), ann_file='ImageSets/Segmentation/train.txt',
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='mmseg.LoadAnnotations')])
