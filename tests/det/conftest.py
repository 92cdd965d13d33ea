"""Fixtures of the detection tests; the shared ones (tiny vlkd-shapes, tiny teacher) are in
tests/conftest.py."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vlkd.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def tiny_config(name: str, shapes_root, teacher_cfg) -> Config:
    """A configs/vild config on the tiny shapes data with the tiny teacher (no workers).

    Dumped unformatted (yapf formatting of each dump takes seconds on a shared CPU)."""
    cfg = Config.fromfile(CONFIGS / 'vild' / name)
    object.__setattr__(cfg, '_format_python_code', False)  # fromfile ignores the argument
    if 'vocabulary' in cfg.model.roi_head.bbox_head:
        cfg.model.roi_head.bbox_head.vocabulary = dict(teacher=teacher_cfg, templates='shapes')
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(shapes_root) + '/'
        cfg[key].update(num_workers=0, persistent_workers=False)
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key].ann_file = cfg[key].ann_file.replace('data/shapes/', str(shapes_root) + '/')
    return cfg


@pytest.fixture
def vild_config(shapes_root, tiny_teacher_cfg):
    """``vild_config(name)``: configs/vild/NAME on the tiny data with the tiny teacher."""
    return lambda name: tiny_config(name, shapes_root, tiny_teacher_cfg)


@pytest.fixture(scope='session')
def vild_text_checkpoint(tmp_path_factory, shapes_root, tiny_teacher_cfg):
    """A ViLD-text checkpoint (random weights, seed 0) as tools/train.py writes it: the
    state_dict and the training config in meta.cfg. Returns (path, config)."""
    cfg = tiny_config('vild_text_r18_fpn_shapes.py', shapes_root, tiny_teacher_cfg)
    init_default_scope('vlkd')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = tmp_path_factory.mktemp('vild_text') / 'iter_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(cfg=cfg.pretty_text)), path)
    return path, cfg
