"""Every shipped config loads, and builds its model and datasets on tiny data."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from vlkd.datasets.shapes import SHAPES_BASE_CLASSES, SHAPES_CLASSES, SHAPES_NOVEL_CLASSES

from seg_benchmark_data import benchmark_configs

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)
# Configs whose data the shared relocation lacks: the test named builds each (its model and
# dataloaders) on data of its own.
BUILT_ELSEWHERE = {
    **{CONFIG_DIR / 'seg' / name: 'tests/seg/test_seg_benchmark_configs.py (official-format '
       'fixtures)' for name in benchmark_configs(CONFIG_DIR / 'seg')},
    CONFIG_DIR / 'seg' / 'deeplabv3plus_r18_self_training_shapes.py':
        'tests/seg/test_seg_configs.py::test_self_training_round (masks relabelled by a '
        'combined student)',
}


BUILT_HERE = [p for p in CONFIGS if p not in BUILT_ELSEWHERE]


def test_configs_found():
    assert len(CONFIGS) >= 6
    assert set(BUILT_ELSEWHERE) <= set(CONFIGS)  # every exception names a shipped config


@pytest.mark.parametrize('path', BUILT_HERE, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_builds(path, relocate_config):
    cfg = relocate_config(Config.fromfile(path))
    runner = Runner.from_cfg(cfg)  # builds the model
    assert sum(p.numel() for p in runner.model.parameters()) > 0
    for split in ('train_dataloader', 'val_dataloader'):
        if cfg.get(split) is None:  # evaluation-only configs, training without validation
            continue
        loader = runner.build_dataloader(cfg[split])
        assert len(loader.dataset) > 0
        batch = next(iter(loader))
        assert len(batch['inputs']) == loader.batch_size or len(batch['inputs']) > 0


def test_shapes_class_lists_in_configs_match_the_generator():
    cfg = Config.fromfile(CONFIG_DIR / '_base_/datasets/shapes_detection.py')
    assert cfg.all_classes == list(SHAPES_CLASSES)
    assert cfg.novel_classes == list(SHAPES_NOVEL_CLASSES)
    assert cfg.base_classes == list(SHAPES_BASE_CLASSES)
    pretrain = Config.fromfile(CONFIG_DIR / 'pretrain/clip_shapes_tiny.py')
    assert pretrain.classes == list(SHAPES_CLASSES)
    assert pretrain.novel_classes == list(SHAPES_NOVEL_CLASSES)
