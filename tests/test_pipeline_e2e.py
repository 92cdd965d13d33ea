"""The quickstart's configs on tiny data: pretrain the teacher, train ViLD-text on its CLIP
ResNet trunk, build the region cache, train ViLD, evaluate, detect a new vocabulary; each
stage for a few iterations with the real runner."""
import json
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


def _short(cfg, work_dir, iters, batch_size):
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.train_dataloader.batch_size = batch_size
    cfg.default_hooks.checkpoint.interval = iters
    cfg.param_scheduler = []
    return cfg


@pytest.mark.slow
def test_pretrain_vild_text_vild(relocate_config, tmp_path, capsys):
    # 1. teacher
    cfg = _short(relocate_config(Config.fromfile(CONFIGS / 'quickstart/teacher.py')),
                 tmp_path / 'teacher', iters=3, batch_size=4)
    Runner.from_cfg(cfg).train()
    assert (tmp_path / 'teacher' / 'last_checkpoint').is_file()
    teacher = dict(type='VLKDTeacher', checkpoint=str(tmp_path / 'teacher'))

    # 2. ViLD-text with that teacher
    cfg = relocate_config(Config.fromfile(CONFIGS / 'quickstart/vild_text.py'), teacher)
    cfg = _short(cfg, tmp_path / 'vild_text', iters=3, batch_size=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    for key in ('bbox_AP50', 'bbox_AP50_base', 'bbox_AP50_novel'):
        assert 0.0 <= metrics[f'ov_coco/{key}'] <= 1.0

    # 3. ViLD: the hook builds the region cache from the ViLD-text RPN, then distils
    cfg = relocate_config(Config.fromfile(CONFIGS / 'quickstart/vild.py'), teacher)
    cfg = _short(cfg, tmp_path / 'vild', iters=3, batch_size=2)
    cache_dir = tmp_path / 'region_cache'
    cfg.model.roi_head.region_distillation.cache_dir = str(cache_dir)
    cfg.custom_hooks[0].cache_dir = str(cache_dir)
    cfg.custom_hooks[0].proposal_detector.checkpoint = str(tmp_path / 'vild_text')
    cfg.custom_hooks[0].num_proposals = 5
    runner = Runner.from_cfg(cfg)
    runner.train()
    meta = json.loads((cache_dir / 'meta.json').read_text())
    assert meta['num_images'] == len(runner.train_dataloader.dataset)
    assert 0 < meta['num_regions'] <= 5 * meta['num_images']
    history = runner.message_hub.log_scalars['train/loss_region_distill']
    assert len(history.data[0]) == 3 and all(v > 0 for v in history.data[0])
    metrics = runner.test()
    assert 'ov_coco/bbox_AP50_novel' in metrics

    # 4. tools/infer.py on the ViLD checkpoint with a vocabulary the config never named
    import importlib.util
    spec = importlib.util.spec_from_file_location('infer', CONFIGS.parent / 'tools/infer.py')
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    config_file = tmp_path / 'vild_config.py'
    cfg.dump(str(config_file))
    image = next((Path(cfg.test_dataloader.dataset.data_root) / 'images/test').glob('*.png'))
    out = tmp_path / 'drawn.png'
    capsys.readouterr()  # drop what training printed
    infer.main([str(image), '--config', str(config_file), '--checkpoint', str(tmp_path / 'vild'),
                '--classes', 'star, moon ,circle', '--out', str(out), '--score-thr', '0'])
    printed = capsys.readouterr().out
    report = json.loads(printed[:printed.rindex('wrote')])
    assert report['classes'] == ['star', 'moon', 'circle']
    assert {d['name'] for d in report['detections']} <= {'star', 'moon', 'circle'}
    assert out.is_file() and out.stat().st_size > 0
    with pytest.raises(ValueError, match='empty name at position 1'):
        infer.main([str(image), '--config', str(config_file), '--checkpoint',
                    str(tmp_path / 'vild'), '--classes', 'star,,circle', '--out', str(out)])
