"""The teacher-on-ground-truth-boxes reference (configs/vild/teacher_on_gt_boxes_shapes.py)
through tools/test.py on the tiny shapes data: each box's detections are the teacher's class
probabilities of its crops, recomputed here from the teacher's region and text embeddings."""
import importlib.util
import json
from pathlib import Path

import mmcv
import pytest
import torch
from mmengine.config import Config

from vlkd.det import TeacherBoxClassifier
from vlkd.teachers import build_teacher

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'vild' / 'teacher_on_gt_boxes_shapes.py')


def run_test_tool(argv):
    """tools/test.py's main, called in-process."""
    spec = importlib.util.spec_from_file_location('vlkd_tools_test', ROOT / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(argv)


def test_detections_are_the_teachers_probabilities_of_the_boxes(tmp_path, shapes_root,
                                                                  tiny_teacher_cfg):
    out = tmp_path / 'dets'
    cfg = Config.fromfile(CONFIG)
    cfg.model.teacher = tiny_teacher_cfg
    cfg.test_dataloader.dataset.data_root = f'{shapes_root}/'
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_evaluator.update(ann_file=f'{shapes_root}/annotations/instances_test.json',
                              outfile_prefix=str(out))
    cfg.dump(tmp_path / 'config.py')
    metrics = run_test_tool([str(tmp_path / 'config.py'), '--work-dir', str(tmp_path)])
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0

    coco = json.loads((shapes_root / 'annotations' / 'instances_test.json').read_text())
    image = coco['images'][0]
    boxes = torch.tensor([a['bbox'] for a in coco['annotations'] if a['image_id'] == image['id']])
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    classes = Config.fromfile(CONFIG).model.classes
    teacher = build_teacher(tiny_teacher_cfg)
    rgb = mmcv.imread(str(shapes_root / 'images' / 'test' / image['file_name']),
                      channel_order='rgb')
    rgb, scale = mmcv.imrescale(rgb, (128, 128), return_scale=True)  # the test pipeline's
    pixels = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        regions = teacher.encode_regions(pixels, [boxes * scale], scales=(1.0, 1.5))[0]
        text = teacher.encode_class_names(classes, 'shapes')
    probs = torch.softmax(regions @ text.T / 0.01, dim=-1)
    expected = sorted(((probs[b, c].item(), b, c) for b in range(len(boxes))
                       for c in range(len(classes))), reverse=True)[:100]

    category_ids = sorted(c['id'] for c in coco['categories'])
    detections = [d for d in json.loads((tmp_path / 'dets.bbox.json').read_text())
                  if d['image_id'] == image['id']]
    assert len(detections) == len(expected)
    got = sorted(detections, key=lambda d: -d['score'])
    for (score, box, label), det in zip(expected, got):
        assert det['score'] == pytest.approx(score, abs=1e-4)
        assert category_ids.index(det['category_id']) == label
        x1, y1, x2, y2 = boxes[box].tolist()
        assert det['bbox'] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-3)


def test_refuses_normalised_pixels_and_training(tiny_teacher_cfg):
    with pytest.raises(ValueError, match='RGB pixels in 0..255'):
        TeacherBoxClassifier(tiny_teacher_cfg, ['circle', 'star'], data_preprocessor=dict(
            type='mmdet.DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=True))
    model = TeacherBoxClassifier(tiny_teacher_cfg, ['circle', 'star'], data_preprocessor=dict(
        type='mmdet.DetDataPreprocessor', bgr_to_rgb=True))
    with pytest.raises(RuntimeError, match='only evaluates'):
        model.loss(None, None)
