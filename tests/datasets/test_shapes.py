"""vlkd-shapes generator: determinism, annotation consistency, OV split, captions, cache."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from vlkd.datasets import shapes
from vlkd.datasets.shapes import (SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_COLORS,
                                  SHAPES_NOVEL_CLASSES, default_shapes_root, generate_shapes)

SMALL = dict(num_train=12, num_val=4, num_test=4)
SPLITS = ('train', 'val', 'test')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return generate_shapes(tmp_path_factory.mktemp('shapes') / 'root', seed=0, **SMALL)


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


def _coco(root, name) -> COCO:
    return COCO(str(root / 'annotations' / f'{name}.json'))


def test_class_split_constants():
    assert len(SHAPES_CLASSES) == 12 and SHAPES_CLASSES[0] == 'circle'
    assert SHAPES_NOVEL_CLASSES == ('star', 'heart', 'crescent')
    assert SHAPES_BASE_CLASSES == tuple(c for c in SHAPES_CLASSES if c not in SHAPES_NOVEL_CLASSES)
    assert len(SHAPES_BASE_CLASSES) == 9 and len(SHAPES_COLORS) == 8


def test_same_seed_same_bytes_other_seed_differs(root, tmp_path):
    again = _files(generate_shapes(tmp_path / 'again', seed=0, **SMALL))
    first = _files(root)
    assert again.keys() == first.keys()
    assert all(again[name] == first[name] for name in first)

    other = _files(generate_shapes(tmp_path / 'other', seed=1, **SMALL))
    assert other.keys() == first.keys()
    images = [n for n in first if n.startswith('images/')]
    assert all(other[n] != first[n] for n in images)
    assert other['annotations/instances_train.json'] != first['annotations/instances_train.json']


def test_splits_never_share_images(root):
    ids, contents = set(), set()
    for split in SPLITS:
        coco = _coco(root, f'instances_{split}')
        assert len(coco.imgs) == SMALL[f'num_{split}']
        for img in coco.imgs.values():
            ids.add(img['id'])
            contents.add((root / 'images' / split / img['file_name']).read_bytes())
    assert len(ids) == len(contents) == sum(SMALL.values())


def test_masks_boxes_and_semantic_maps_agree(root):
    min_visible = shapes._MIN_VISIBLE_PX_128
    for split in SPLITS:
        coco = _coco(root, f'instances_{split}')
        for img_id, img in coco.imgs.items():
            semantic = np.array(Image.open(root / 'semantic' / split / img['file_name']))
            pixels = np.array(Image.open(root / 'images' / split / img['file_name']))
            assert semantic.dtype == np.uint8 and semantic.shape == (128, 128)
            assert pixels.shape == (128, 128, 3)
            expected = np.zeros((128, 128), dtype=np.int64)
            coverage = np.zeros((128, 128), dtype=np.int64)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
            assert 1 <= len(anns) <= 5
            for ann in anns:
                mask = coco.annToMask(ann).astype(bool)
                rows, cols = np.nonzero(mask)
                tight = [cols.min(), rows.min(), cols.max() - cols.min() + 1,
                         rows.max() - rows.min() + 1]
                assert ann['bbox'] == tight
                assert ann['area'] == mask.sum() >= min_visible
                assert ann['iscrowd'] == 0
                # what is drawn: the object's colour (+-12 jitter, +-4 std noise)
                median = np.median(pixels[mask].astype(float), axis=0)
                assert np.abs(median - SHAPES_COLORS[ann['color']]).max() <= 14
                expected[mask] = ann['category_id']
                coverage += mask
            assert coverage.max() == 1  # visible masks are disjoint
            np.testing.assert_array_equal(semantic, expected)


def test_coco_files_categories_and_base_split(root):
    full = _coco(root, 'instances_train')
    base = _coco(root, 'instances_train_base')
    names = {cat['id']: cat['name'] for cat in full.loadCats(full.getCatIds())}
    assert names == {i + 1: name for i, name in enumerate(SHAPES_CLASSES)}
    assert base.loadCats(base.getCatIds()) == full.loadCats(full.getCatIds())
    assert base.imgs == full.imgs  # every train image stays, novel objects included

    novel_ids = {SHAPES_CLASSES.index(c) + 1 for c in SHAPES_NOVEL_CLASSES}
    full_anns = full.loadAnns(full.getAnnIds())
    assert any(a['category_id'] in novel_ids for a in full_anns)
    assert base.loadAnns(base.getAnnIds()) == [a for a in full_anns
                                               if a['category_id'] not in novel_ids]

    ann_ids = [a['id'] for split in SPLITS for a in _coco(root, f'instances_{split}').loadAnns(
        _coco(root, f'instances_{split}').getAnnIds())]
    assert len(ann_ids) == len(set(ann_ids))


def test_class_frequencies_and_meta_counts(root):
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['classes'] == list(SHAPES_CLASSES)
    assert meta['novel_classes'] == list(SHAPES_NOVEL_CLASSES)
    assert meta['params'] == dict(version=shapes.GENERATOR_VERSION, seed=0, image_size=128,
                                  max_objects=5, **SMALL)
    for split in SPLITS:
        coco = _coco(root, f'instances_{split}')
        recount = {name: len(coco.getAnnIds(catIds=[i + 1]))
                   for i, name in enumerate(SHAPES_CLASSES)}
        assert meta['counts'][split]['per_class'] == recount
        assert meta['counts'][split]['instances'] == len(coco.anns)
    train = meta['counts']['train']['per_class'].values()
    assert max(train) - min(train) <= 2


def test_captions_mention_every_object(root):
    for split in SPLITS:
        instances = _coco(root, f'instances_{split}')
        data = json.loads((root / 'annotations' / f'captions_{split}.json').read_text())
        assert [img['id'] for img in data['images']] == sorted(instances.imgs)
        by_image = {}
        for cap in data['annotations']:
            by_image.setdefault(cap['image_id'], []).append(cap['caption'])
        assert by_image.keys() == instances.imgs.keys()
        for img_id, captions in by_image.items():
            assert len(set(captions)) >= 3
            objects = [f"{a['color']} {SHAPES_CLASSES[a['category_id'] - 1]}"
                       for a in instances.loadAnns(instances.getAnnIds(imgIds=[img_id]))]
            for caption in captions:
                missing = [o for o in objects if o not in caption]
                assert not missing, (caption, objects)


def test_rle_decodes_with_pycocotools_mask_api(root):
    coco = _coco(root, 'instances_val')
    ann = coco.loadAnns(coco.getAnnIds())[0]
    rle = dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode())
    assert mask_utils.toBbox(rle).tolist() == ann['bbox']
    assert mask_utils.area(rle) == ann['area']


def test_cache_reuse_and_parameter_mismatch(tmp_path):
    root = generate_shapes(tmp_path / 'cache', seed=3, num_train=2, num_val=1, num_test=1)
    watched = [root / 'meta.json', root / 'images' / 'train' / '000001.png',
               root / 'annotations' / 'instances_val.json']
    before = [os.stat(p).st_mtime_ns for p in watched]
    assert generate_shapes(root, seed=3, num_train=2, num_val=1, num_test=1) == root
    assert [os.stat(p).st_mtime_ns for p in watched] == before

    with pytest.raises(FileExistsError, match='different parameters.*seed: 3 there, 4 asked'):
        generate_shapes(root, seed=4, num_train=2, num_val=1, num_test=1)
    with pytest.raises(FileExistsError, match='num_train: 2 there, 5 asked'):
        generate_shapes(root, seed=3, num_train=5, num_val=1, num_test=1)


def test_foreign_or_empty_directories(tmp_path):
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='no meta.json'):
        generate_shapes(foreign, num_train=1, num_val=0, num_test=0)
    assert (foreign / 'notes.txt').read_text() == 'mine'

    empty = tmp_path / 'empty'
    empty.mkdir()
    generate_shapes(empty, num_train=1, num_val=0, num_test=0)
    assert (empty / 'meta.json').is_file()
    assert [p.name for p in tmp_path.iterdir() if '.tmp-' in p.name] == []


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(shapes, '_write_split', fail)
    with pytest.raises(RuntimeError, match='disk full'):
        generate_shapes(tmp_path / 'root', num_train=1, num_val=0, num_test=0)
    assert list(tmp_path.iterdir()) == []


def test_default_root_depends_on_params(tmp_path, monkeypatch):
    monkeypatch.setenv('VLKD_HOME', str(tmp_path / 'home'))
    small = dict(num_train=1, num_val=1, num_test=0)
    path = default_shapes_root(**small)
    assert path.parent == tmp_path / 'home' / 'data' and path.name.startswith('shapes-')
    assert default_shapes_root(**small) == path
    assert default_shapes_root(seed=1, **small) != path
    assert generate_shapes(None, **small) == path and (path / 'meta.json').is_file()


@pytest.mark.parametrize('bad, match', [(dict(num_train=-1), 'num_train must be >= 0'),
                                        (dict(image_size=16), 'image_size must be >= 32'),
                                        (dict(max_objects=0), 'max_objects'),
                                        (dict(seed=1.5), 'seed must be an integer')])
def test_bad_parameters_are_named(tmp_path, bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        generate_shapes(tmp_path / 'x', **bad)
    assert not (tmp_path / 'x').exists()


def test_other_image_size(tmp_path):
    root = generate_shapes(tmp_path / 'big', image_size=96, max_objects=3, num_train=3,
                           num_val=0, num_test=0)
    coco = _coco(root, 'instances_train')
    assert {(img['height'], img['width']) for img in coco.imgs.values()} == {(96, 96)}
    assert Image.open(root / 'images' / 'train' / '000001.png').size == (96, 96)
    assert all(1 <= len(coco.getAnnIds(imgIds=[i])) <= 3 for i in coco.imgs)


def test_make_shapes_cli(tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / 'tools' / 'make_shapes.py'
    spec = importlib.util.spec_from_file_location('make_shapes', path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    args = ['--out', str(tmp_path / 'cli'), '--seed', '2', '--num-train', '4', '--num-val', '2',
            '--num-test', '1']
    cli.main(args)
    printed = capsys.readouterr().out
    meta = json.loads((tmp_path / 'cli' / 'meta.json').read_text())
    assert f"at {tmp_path / 'cli'} (generated" in printed
    star = meta['counts']['train']['per_class']['star']
    assert any(line.split() == ['star', 'novel', str(star),
                                str(meta['counts']['val']['per_class']['star']),
                                str(meta['counts']['test']['per_class']['star'])]
               for line in printed.splitlines())
    cli.main(args)
    assert '(reused)' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='different parameters'):
        cli.main(args[:3] + ['3'] + args[4:])
