"""Train a config in one process and in two gloo processes with half the batch each, and
compare losses and weights (used by tests/distributed and tests/det).

Per iteration the mean of the two processes' losses is the single process's loss when every
loss is a mean over equal halves and the losses that need the whole batch gather across
processes; DDP's averaged gradients are then the single process's gradients, so the weights
agree after several optimizer steps up to float rounding.
"""
import os
import sys
from pathlib import Path

import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).parents[1] / 'vlp' / 'objectives'))
from _distributed import run_in_processes  # noqa: E402

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
