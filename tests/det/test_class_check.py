"""Class names of annotations, dataset and detector: each disagreement is an error that names
it, raised by the hook every detection config registers before any inference runs."""
import json
from types import SimpleNamespace

import pytest
from mmengine.runner import Runner

from vlkd.datasets.shapes import SHAPES_CLASSES
from vlkd.datasets.shapes_dataset import ShapesDataset
from vlkd.det import CheckClassNamesHook, ClassNamesMismatch
from vlkd.det.class_check import check_annotation_categories, check_model_classes


def _without_category(shapes_root, tmp_path, name='star'):
    """instances_test.json without the category ``name`` and its boxes."""
    coco = json.loads((shapes_root / 'annotations' / 'instances_test.json').read_text())
    dropped = [c['id'] for c in coco['categories'] if c['name'] == name]
    coco['categories'] = [c for c in coco['categories'] if c['id'] not in dropped]
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] not in dropped]
    path = tmp_path / 'instances_test_no_star.json'
    path.write_text(json.dumps(coco))
    return path


def test_annotation_file_missing_a_category(shapes_root, tmp_path):
    path = _without_category(shapes_root, tmp_path)
    dataset = ShapesDataset(ann_file=str(path), data_root=str(shapes_root),
                            data_prefix=dict(img='images/test/'), test_mode=True, pipeline=[])
    # what the check guards against: mmdet numbers the 11 found classes 0..10
    assert len(dataset.cat_ids) == len(SHAPES_CLASSES) - 1
    with pytest.raises(ClassNamesMismatch, match=r"no category for \['star'\].*Add the missing "
                                                 "entries"):
        check_annotation_categories(dataset)
    complete = ShapesDataset(ann_file=str(shapes_root / 'annotations' / 'instances_test.json'),
                             data_root=str(shapes_root), data_prefix=dict(img='images/test/'),
                             test_mode=True, pipeline=[])
    check_annotation_categories(complete)


def test_detector_classes_must_be_the_dataset_classes():
    vild = SimpleNamespace(roi_head=SimpleNamespace(bbox_head=SimpleNamespace(
        train_classes=['circle', 'square'], test_classes=['square', 'circle', 'star'])))
    check_model_classes(vild, ['circle', 'square'], 'train')
    with pytest.raises(ClassNamesMismatch, match=r"test_classes \['square', 'circle', 'star'\] "
                                                 r"are not the test dataset's classes"):
        check_model_classes(vild, ['circle', 'square', 'star'], 'test')
    plain = SimpleNamespace(roi_head=SimpleNamespace(bbox_head=SimpleNamespace(num_classes=3)))
    check_model_classes(plain, ['a', 'b', 'c'], 'train')
    with pytest.raises(ClassNamesMismatch, match='predicts 3 classes, the test dataset has 2'):
        check_model_classes(plain, ['a', 'b'], 'test')


def test_the_runner_refuses_before_testing(vild_config, shapes_root, tmp_path):
    cfg = vild_config('vild_text_r18_fpn_shapes.py')
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.test_dataloader.dataset.ann_file = str(_without_category(shapes_root, tmp_path))
    runner = Runner.from_cfg(cfg)
    assert any(isinstance(hook, CheckClassNamesHook) for hook in runner.hooks)
    with pytest.raises(ClassNamesMismatch, match=r"no category for \['star'\]"):
        runner.test()
