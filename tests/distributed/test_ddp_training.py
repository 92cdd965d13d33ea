"""Distributed training is the same training: a few iterations of a recipe in two CPU
processes (gloo, DDP through mmengine and vlkd.engine.build_runner, as `--launcher pytorch`
runs it), each with half the batch, give the losses and weights of one process with the
whole batch.

Per iteration the mean of the two processes' losses is the single process's loss (every loss
here is a mean over equal halves, and the contrastive losses gather their negatives across
processes), and DDP's averaged gradients are the single process's gradients, so the weights
agree after several optimizer steps up to float rounding. Data and models are deterministic
(no augmentation, no dropout, no batch norm) so that only the process layout differs.
"""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).parent))
from ddp_equality import compare  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def deterministic_pairs(cfg: Config) -> None:
    """Train on the first caption of every training image, resized, no flips or crops."""
    cfg.train_dataloader.dataset = dict(
        type='ImageTextDataset', data_root=cfg.train_dataloader.dataset.data_root,
        ann_file='annotations/captions_train.json', data_prefix=dict(img='images/train/'),
        items='images', test_mode=True, pipeline=cfg.retrieval_pipeline)
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    cfg.train_dataloader.drop_last = True  # full batches of BATCH: equal halves


@pytest.mark.slow
def test_clip_recipe_two_processes_equal_one_with_the_doubled_batch(relocate_config, tmp_path):
    cfg = relocate_config(Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny.py'))
    deterministic_pairs(cfg)
    # the recipe with a ViT image tower: open_clip's ResNet has batch norm, whose batch
    # statistics depend on how the batch is split (SyncBatchNorm needs GPUs)
    cfg.model.model_cfg.vision_cfg = dict(image_size=32, patch_size=8, layers=2, width=64,
                                          head_width=32)
    cfg.model.model_cfg.text_cfg.update(layers=2)
    compare(cfg, tmp_path)


def test_gpu_pinning_launchers_are_refused_on_cpus_with_the_way_out(monkeypatch):
    from vlkd.engine import ConfigError, build_runner
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # this machine, anywhere
    cfg = Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny.py')
    cfg.launcher = 'slurm'
    with pytest.raises(ConfigError, match='torchrun'):
        build_runner(cfg)


@pytest.mark.slow
def test_albef_recipe_two_processes_equal_one_with_the_doubled_batch(relocate_config,
                                                                      tmp_path):
    """ITC against momentum features and queues (gathered from both processes) and ITM with
    negatives mined from the global similarity matrix. The hardest negative instead of a
    sampled one, and no MLM, so that no random draw depends on how the batch is split
    (ITM mined within each process's half would pick other negatives: other losses)."""
    cfg = relocate_config(Config.fromfile(CONFIGS / 'pretrain' / 'albef_shapes_tiny.py'))
    deterministic_pairs(cfg)
    cfg.model.image_encoder = dict(  # no batch norm (see the CLIP test)
        type='ViTPatchEncoder', vision_cfg=dict(image_size=32, patch_size=8, width=64,
                                                layers=2, head_width=32), embed_dim=64)
    cfg.model.objectives.itm.hard_negatives = 'hardest'
    del cfg.model.objectives['mlm']
    # the queues take part from the second step on; they hold all 3 steps' features
    # (a FIFO that overwrote rows would drop different ones: the sampler interleaves ranks)
    cfg.model.objectives.itc.queue_size = 16
    # ALBEF projects the ViT's [CLS] itself: open_clip's own projection gets no gradient
    cfg.find_unused_parameters = True
    compare(cfg, tmp_path)
