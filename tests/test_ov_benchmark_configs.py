"""The OV-COCO and OV-LVIS benchmark configs (configs/ov_coco, configs/ov_lvis): their class
lists against vlkd's, the 2x schedules, and ViLD-text then ViLD (region distillation with a
cache built from the ViLD-text run) trained for an epoch of the tiny official-format data
(2 iterations, ResNet-50 at 128 px) and evaluated with the benchmark metrics."""
import math
from pathlib import Path

import pytest
from mmengine.config import Config

from vlkd.datasets.ov_splits import (LVIS_V1_CLASSES, OV_COCO_BASE_CLASSES, OV_COCO_CLASSES,
                                     OV_LVIS_BASE_CLASSES)
from vlkd.det.region_cache import RegionEmbeddingCache
from vlkd.engine import build_runner

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'
BENCHMARKS = {
    'ov_coco': dict(text='ov_coco/vild_text_r50_fpn_{}_ov_coco.py',
                    vild='ov_coco/vild_r50_fpn_{}_ov_coco.py',
                    train_images={1, 2, 6}, metric='ov_coco/bbox_AP50_novel'),
    'ov_lvis': dict(text='ov_lvis/vild_text_mask_r50_fpn_{}_ov_lvis.py',
                    vild='ov_lvis/vild_mask_r50_fpn_{}_ov_lvis.py',
                    train_images={101, 103, 104}, metric='ov_lvis/segm_APr'),
}
CONFIGS_2X = [pattern.format('2x') for b in BENCHMARKS.values() for pattern in
              (b['text'], b['vild'])]


def load(relative_path) -> Config:
    return Config.fromfile(CONFIG_DIR / relative_path)


def test_class_lists_are_vlkds():
    coco = load(BENCHMARKS['ov_coco']['text'].format('1x'))
    assert coco.model.roi_head.bbox_head.train_classes == list(OV_COCO_BASE_CLASSES)
    assert coco.model.roi_head.bbox_head.test_classes == list(OV_COCO_CLASSES)
    assert coco.train_dataloader.dataset.class_group == 'base'
    lvis = load(BENCHMARKS['ov_lvis']['text'].format('1x'))
    assert lvis.model.roi_head.bbox_head.train_classes == list(OV_LVIS_BASE_CLASSES)
    assert lvis.model.roi_head.bbox_head.test_classes == list(LVIS_V1_CLASSES)
    assert lvis.train_dataloader.dataset.dataset.class_group == 'base'
    assert lvis.model.roi_head.mask_head.class_agnostic
    for cfg in (coco, lvis):  # the lists are private helpers, not config entries
        assert not [key for key in cfg.keys() if key.endswith('classes')]
        assert 'class_group' not in cfg.val_dataloader.dataset  # tested on all classes


@pytest.mark.parametrize('path_2x', CONFIGS_2X)
def test_2x_configs_are_the_1x_ones_with_24_epochs(path_2x):
    cfg_2x, cfg_1x = load(path_2x).to_dict(), load(path_2x.replace('_2x_', '_1x_')).to_dict()
    assert cfg_1x['train_cfg']['max_epochs'] == 12 and cfg_2x['train_cfg']['max_epochs'] == 24
    steps = {s['type']: s for s in cfg_2x['param_scheduler']}['MultiStepLR']
    assert steps['milestones'] == [16, 22] and steps['end'] == 24
    for cfg in (cfg_1x, cfg_2x):
        del cfg['train_cfg'], cfg['param_scheduler']
    assert cfg_2x == cfg_1x


def tiny(cfg: Config, work_dir: Path, save_checkpoint: bool = True) -> Config:
    """The config for one epoch over the fixture images at 128 px, with 100 proposals and 64
    sampled RoIs per image (the box head's fully connected layers on COCO's 512 RoIs per
    image would dominate the test's time), without the ImageNet weights file of the backbone,
    logging every iteration."""
    def shrink(node):
        if isinstance(node, dict):
            if node.get('type') == 'Resize':
                node['scale'] = (128, 128)
            if node.get('type') == 'RandomChoiceResize':
                node['scales'] = [(128, 128)]
            for value in node.values():
                shrink(value)
        elif isinstance(node, list):
            for value in node:
                shrink(value)

    data = cfg.to_dict()
    shrink(data)
    data['model']['backbone']['init_cfg'] = None
    model_train, model_test = data['model']['train_cfg'], data['model']['test_cfg']
    model_train['rpn_proposal'].update(nms_pre=200, max_per_img=100)
    model_train['rcnn']['sampler']['num'] = 64
    model_test['rpn'].update(nms_pre=200, max_per_img=100)
    data['train_cfg']['max_epochs'] = 1
    data['default_hooks']['logger']['interval'] = 1
    if not save_checkpoint:
        data['default_hooks']['checkpoint'] = None
    data['work_dir'] = str(work_dir)
    return Config(data, format_python_code=False)  # yapf takes seconds on the class lists


def check_metrics(runner, benchmark: str) -> None:
    """The metrics of the validation at the end of training."""
    metrics = {key[len('val/'):]: value.current() for key, value in
               runner.message_hub.log_scalars.items() if key.startswith(f'val/{benchmark}/')}
    if benchmark == 'ov_coco':
        keys = {f'ov_coco/bbox_{k}{g}' for k in ('AP', 'AP50') for g in ('', '_base', '_novel')}
    else:
        keys = {f'ov_lvis/{t}_{k}' for t in ('bbox', 'segm')
                for k in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')}
    assert set(metrics) == keys
    assert all(-1 <= value <= 1 for value in metrics.values())


@pytest.mark.slow
# the argument is not named 'benchmark': pytest-benchmark, where installed, owns that fixture
@pytest.mark.parametrize('ov_benchmark', sorted(BENCHMARKS))
def test_vild_text_then_vild_train_and_evaluate(ov_benchmark, relocate_config, tmp_path):
    spec = BENCHMARKS[ov_benchmark]
    # ViLD-text: base-class boxes, text-embedding classifier
    text_cfg = tiny(relocate_config(load(spec['text'].format('1x'))), tmp_path / 'vild_text')
    runner = build_runner(text_cfg)
    runner.train()
    losses = {k: v for k, v in runner.message_hub.log_scalars.items() if 'loss' in k}
    assert runner.iter == 2 and 'train/loss_cls' in losses
    assert all(math.isfinite(v.current()) for v in losses.values())
    check_metrics(runner, ov_benchmark)
    assert (tmp_path / 'vild_text' / 'epoch_1.pth').is_file()

    # ViLD: the ViLD-text run proposes regions, the teacher embeds them once
    cfg = relocate_config(load(spec['vild'].format('1x')))
    cache_dir = str(tmp_path / 'region_cache')
    cfg.model.roi_head.region_distillation.cache_dir = cache_dir
    cfg.custom_hooks[0].update(cache_dir=cache_dir,
                               proposal_detector=dict(checkpoint=str(tmp_path / 'vild_text')))
    runner = build_runner(tiny(cfg, tmp_path / 'vild', save_checkpoint=False))
    runner.train()
    distill = runner.message_hub.get_scalar('train/loss_region_distill').current()
    assert math.isfinite(distill) and distill > 0
    assert set(RegionEmbeddingCache(cache_dir).index) == spec['train_images']
    check_metrics(runner, ov_benchmark)
