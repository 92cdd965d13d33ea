"""Every configs/vild variant trains and tests with mmengine's Runner on tiny data; the
distilled students share one region cache (built once, reused)."""
import pytest
from mmengine.runner import Runner


def _short(cfg, work_dir, iters=2):
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = iters
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # tested below instead
    return cfg


def _train_and_test(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0
    return runner


@pytest.mark.slow
def test_variants_train_and_test(tmp_path, vild_config, tiny_teacher_cfg, vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    cache_dir = tmp_path / 'region_cache'
    built = None
    for name in ('vild_image_r18_fpn_shapes.py', 'vild_ensemble_r18_fpn_shapes.py'):
        cfg = _short(vild_config(name), tmp_path / name)
        cfg.model.roi_head.region_distillation.cache_dir = str(cache_dir)
        cfg.custom_hooks = [dict(cfg.custom_hooks[0], cache_dir=str(cache_dir),
                                 teacher=tiny_teacher_cfg, num_proposals=4,
                                 proposal_detector=dict(checkpoint=str(checkpoint)))]
        runner = _train_and_test(cfg)
        losses = runner.message_hub.log_scalars
        assert 'train/loss_region_distill' in losses
        assert ('train/loss_cls' in losses) == (name == 'vild_ensemble_r18_fpn_shapes.py')
        mtime = (cache_dir / 'meta.json').stat().st_mtime_ns
        assert built in (None, mtime)  # the second student reuses the first one's cache
        built = mtime

    for name in ('oracle_vild_text_r18_fpn_shapes.py', 'base_only_faster_rcnn_r18_fpn_shapes.py'):
        _train_and_test(_short(vild_config(name), tmp_path / name))

    cfg = vild_config('vild_text_teacher_ensemble_r18_fpn_shapes.py')
    cfg.work_dir = str(tmp_path / 'teacher_ensemble')
    cfg.load_from = str(checkpoint)
    metrics = Runner.from_cfg(cfg).test()
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0
