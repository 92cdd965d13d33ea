"""Inference API and tools/infer.py: an image or a folder, class names or a vocabulary file,
drawings and a COCO-format json (checked with pycocotools); checkpoints that do not fit."""
import copy
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from vlkd.det import OpenVocabDetector, coco_detections
from vlkd.registry import MODELS
from vlkd.teachers import build_teacher
from vlkd.teachers.embedding_file import ClassEmbeddingFileError, save_class_embeddings

TOOLS = Path(__file__).resolve().parents[2] / 'tools'


def _infer_tool():
    spec = importlib.util.spec_from_file_location('infer', TOOLS / 'infer.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coco_detections_format():
    result = dict(bboxes=np.array([[10., 20., 40., 30.], [0., 0., 5., 8.]]),
                  scores=np.array([0.9, 0.2]), labels=np.array([1, 0]))
    coco = coco_detections([dict(file_name='a/1.png', width=64, height=48, result=result),
                            dict(file_name='2.png', width=64, height=64,
                                 result=dict(bboxes=np.zeros((0, 4)), scores=np.zeros(0),
                                             labels=np.zeros(0, int)))], ['star', 'moon'])
    assert coco['categories'] == [dict(id=1, name='star'), dict(id=2, name='moon')]
    assert [i['file_name'] for i in coco['images']] == ['a/1.png', '2.png']
    first = coco['annotations'][0]
    assert first['bbox'] == [10.0, 20.0, 30.0, 10.0] and first['category_id'] == 2
    assert first['image_id'] == 1 and first['score'] == 0.9 and first['area'] == 300.0
    assert len(coco['annotations']) == 2


def test_infer_folder_with_a_vocabulary_file(tmp_path, shapes_root, vild_text_checkpoint, capsys):
    checkpoint, cfg = vild_text_checkpoint
    config = tmp_path / 'config.py'
    cfg.dump(str(config))
    folder = tmp_path / 'images'
    shutil.copytree(shapes_root / 'images' / 'test', folder / 'test')
    (folder / 'notes.txt').write_text('not an image')
    vocabulary = tmp_path / 'vocab.txt'
    vocabulary.write_text('moon\nstar\ncircle\n')
    _infer_tool().main([str(folder), '--config', str(config), '--checkpoint', str(checkpoint),
                        '--vocabulary', str(vocabulary), '--out-dir', str(tmp_path / 'out')])
    images = sorted((folder / 'test').glob('*.png'))
    for image in images:
        assert (tmp_path / 'out' / 'test' / image.name).is_file()
    coco = COCO(str(tmp_path / 'out' / 'results.json'))  # a valid COCO dataset...
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['moon', 'star', 'circle']
    assert sorted(i['file_name'] for i in coco.dataset['images']) == [
        f'test/{image.name}' for image in images]
    detections = coco.dataset['annotations']
    assert detections and {d['category_id'] for d in detections} <= {1, 2, 3}
    for image in coco.dataset['images']:
        for d in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
            x, y, w, h = d['bbox']
            assert 0 <= x and x + w <= image['width'] + 1e-3 and h >= 0
    results = coco.loadRes(detections)  # ...whose annotations are a COCO results list
    assert len(results.dataset['annotations']) == len(detections)
    assert 'results.json' in capsys.readouterr().out



def test_embedding_file_vocabulary_and_its_mismatches(tmp_path, tiny_teacher_cfg,
                                                      vild_text_checkpoint):
    checkpoint, cfg = vild_text_checkpoint
    teacher = build_teacher(tiny_teacher_cfg)
    names = ['moon', 'star']
    embeddings = teacher.encode_class_names(names, 'photo')
    good = save_class_embeddings(tmp_path / 'good.pt', names, embeddings, teacher.fingerprint,
                                 'templates: photo')
    detector = OpenVocabDetector.from_config(cfg, checkpoint, vocabulary=str(good))
    assert detector.classes == names
    torch.testing.assert_close(detector.bbox_head.test_embeddings, embeddings)

    other_dim = save_class_embeddings(tmp_path / 'dim.pt', names, torch.randn(2, 16),
                                      teacher.fingerprint, 'test')
    with pytest.raises(ClassEmbeddingFileError, match='16-d embeddings, the model uses 32-d'):
        detector.set_vocabulary_file(other_dim)
    other_teacher = save_class_embeddings(tmp_path / 'teacher.pt', names, embeddings,
                                          'b' * 64, 'test')
    with pytest.raises(ClassEmbeddingFileError, match='made with teacher bbbbbbbbbbbb'):
        detector.set_vocabulary_file(other_teacher)
    with pytest.raises(ValueError, match='classes or a vocabulary file, not both'):
        OpenVocabDetector.from_config(cfg, checkpoint, classes=names, vocabulary=str(good))


def test_checkpoint_of_another_embedding_dimension_is_refused(tmp_path, tiny_teacher_cfg,
                                                              vild_text_checkpoint):
    checkpoint, cfg = vild_text_checkpoint
    # the same detector trained with a 16-d vocabulary (an embedding file of another teacher)
    path = save_class_embeddings(tmp_path / 'v16.pt', list(cfg.all_classes),
                                 torch.randn(len(cfg.all_classes), 16), 'c' * 64, 'test')
    cfg16 = copy.deepcopy(cfg)
    cfg16.model.roi_head.bbox_head.vocabulary = dict(embedding_file=str(path))
    init_default_scope('vlkd')
    torch.save(dict(state_dict=MODELS.build(cfg16.model).state_dict()), tmp_path / 'd16.pth')
    with pytest.raises(ValueError, match=r'projection.weight: checkpoint \(16, 256\), model '
                                         r'\(32, 256\).*vocabulary'):
        OpenVocabDetector.from_config(cfg, tmp_path / 'd16.pth')
    partial = torch.load(checkpoint, weights_only=True)
    partial['state_dict'].pop('roi_head.bbox_head.background_embedding')
    torch.save(partial, tmp_path / 'partial.pth')
    with pytest.raises(ValueError, match='lacks 1 weights'):
        OpenVocabDetector.from_config(cfg, tmp_path / 'partial.pth')
