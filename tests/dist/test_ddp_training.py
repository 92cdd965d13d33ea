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
import os
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).parents[1] / 'vlp' / 'objectives'))
from _distributed import run_in_processes  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
ITERATIONS = 3
BATCH = 4  # the single process's batch; each of the two processes gets half


def _train(rank: int, world_size: int, cfg_dict: dict, work_dir: str):
    """Train ``cfg_dict`` in this process; returns the per-iteration losses and saves the
    initial and trained weights of rank 0 in ``work_dir`` (initial.pth, weights.pth)."""
    from vlkd.engine import build_runner  # imported in the spawned process
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    cfg = Config(cfg_dict, format_python_code=False)
    cfg.launcher = 'pytorch' if world_size > 1 else 'none'
    cfg.work_dir = work_dir
    cfg.train_dataloader.batch_size = BATCH // world_size
    runner = build_runner(cfg)
    if rank == 0:
        torch.save(runner.model.state_dict(), Path(work_dir) / 'initial.pth')
    runner.train()
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    if rank == 0:
        torch.save(model.state_dict(), Path(work_dir) / 'weights.pth')
    return dict(losses=list(runner.message_hub.get_scalar('train/loss').data[0]),
                wrapper=type(runner.model).__name__)


def _single(rank, world_size, cfg_dict, work_dir):
    """The one-process reference, spawned like the others so that both start alike."""
    return _train(rank, 1, cfg_dict, work_dir)


def compare(cfg: Config, tmp_path: Path, rtol: float = 1e-4, atol: float = 1e-6):
    cfg.train_cfg.update(max_iters=ITERATIONS, val_interval=ITERATIONS + 1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = ITERATIONS + 1  # no checkpoint files
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.randomness = dict(seed=0)
    # SGD: the weights follow the gradients linearly. Adam divides by the gradient's size,
    # and on gradients that are zero in exact arithmetic (the attention key bias) it turns
    # float noise of either run into full-size steps.
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
    cfg.param_scheduler = None
    cfg_dict = cfg.to_dict()
    (single,) = run_in_processes(_single, cfg_dict, str(tmp_path / 'one'), world_size=1)
    double = run_in_processes(_train, cfg_dict, str(tmp_path / 'two'), world_size=2)

    assert single['wrapper'] != 'MMDistributedDataParallel'
    assert all(run['wrapper'] == 'MMDistributedDataParallel' for run in double)
    mean_losses = torch.tensor([run['losses'] for run in double]).mean(0)
    torch.testing.assert_close(mean_losses, torch.tensor(single['losses']), rtol=rtol,
                               atol=atol)
    initial = torch.load(tmp_path / 'one' / 'initial.pth')
    one = torch.load(tmp_path / 'one' / 'weights.pth')
    two = torch.load(tmp_path / 'two' / 'weights.pth')
    assert one.keys() == two.keys()
    moved = [name for name, value in one.items() if not torch.equal(value, initial[name])]
    assert len(moved) > len(one) // 2  # the comparison is about trained weights
    for name, value in one.items():
        other = two[name]
        if name.endswith('queue.rows'):  # each step enqueues the global batch in the
            value, other = sorted_rows(value), sorted_rows(other)  # sampler's rank order
        torch.testing.assert_close(other, value, rtol=rtol, atol=atol, msg=name)
    return mean_losses


def sorted_rows(rows: torch.Tensor) -> torch.Tensor:
    """The rows of a feature queue in a canonical order (by their sums)."""
    return rows[rows.sum(dim=1).argsort()]


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
