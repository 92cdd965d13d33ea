"""Training-step benchmarks: a recipe trained through vlkd / mmengine against the same model in
a plain PyTorch loop (the framework's overhead), and a ViT training step against the
machine's matrix-multiplication throughput (the physical limit).
"""
import copy
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.runner import Runner

from vlkd.engine import build_runner, load_config
from vlkd.vlp.clip_model import (CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, build_open_clip_model,
                                 build_tokenizer)
from vlkd.vlp.objectives import ImageTextContrastiveLoss
from .measure import best_times, peak_memory, synchronize, timed

ROOT = Path(__file__).resolve().parents[2]
CLIP_RECIPE = ROOT / 'configs' / 'pretrain' / 'clip_shapes_tiny.py'
# a small ViT CLIP for --quick runs (the suite's default is open_clip's ViT-B-32)
TINY_VIT = dict(embed_dim=64, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2,
                                              head_width=32),
                text_cfg=dict(context_length=16, vocab_size=1000, width=64, heads=2, layers=2))


def _the_batch(items):
    """Collate of a DataLoader over ready batches, one at a time."""
    return items[0]


class _TakeTurnsHook(Hook):
    """Times the runner's iterations and runs one plain step after each, so that both take
    turns under the same machine load. An iteration is timed from the end of the previous
    plain step to the end of this hook's turn in ``after_train_iter`` (the last hook):
    data fetch, every other hook and ``train_step``."""
    priority = 'LOWEST'

    def __init__(self, plain_step: Callable, start: Callable, device: torch.device):
        self.plain_step, self.start, self.device = plain_step, start, device
        self.runner_times, self.plain_times, self.losses = [], [], []
        self._resumed = None

    def before_train(self, runner) -> None:
        self.start(runner.model)  # the plain model copies the initialised weights
        synchronize(self.device)
        self._resumed = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        synchronize(self.device)
        self.runner_times.append(time.perf_counter() - self._resumed)
        plain_loss = []
        self.plain_times.append(timed(lambda: plain_loss.append(self.plain_step(batch_idx)),
                                      self.device))
        self.losses.append((float(outputs['loss_itc'].detach()), plain_loss[0]))
        self._resumed = time.perf_counter()


def bench_clip_recipe(device: torch.device, steps: int, data_root: str,
                      batch_size: Optional[int] = None, num_batches: int = 4) -> dict:
    """The CLIP recipe (configs/pretrain/clip_shapes_tiny.py: model, optim wrapper, schedulers
    and hooks as ``tools/train.py`` builds them, validation and checkpoints off) against the
    same open_clip model trained by a plain loop (preprocessing, ITC with the recipe's label
    smoothing and scale clamp, AdamW with the recipe's settings and a no-decay group, LinearLR
    warm-up). Both read the same ``num_batches`` batches, loaded beforehand and cycled.
    Iterations take turns (:class:`_TakeTurnsHook`); the fastest of each after 2 warm-up
    steps, and the ratio of the medians in the setting. Peak memory: one ``train_step`` of
    the recipe's model, one step of the plain loop."""
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = load_config(str(CLIP_RECIPE))
        cfg.work_dir = work_dir
        cfg.log_level = 'ERROR'
        cfg.train_cfg.max_iters = steps + 2
        cfg.train_cfg.val_interval = steps + 3
        for part in ('val', 'test'):
            for suffix in ('dataloader', 'cfg', 'evaluator'):
                cfg[f'{part}_{suffix}'] = None
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=steps + 3,
                                            by_epoch=False, save_last=False)
        loader_cfg = cfg.train_dataloader
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loader_cfg.dataset.data_root = data_root
        if batch_size is not None:
            loader_cfg.batch_size = batch_size
        runner = build_runner(cfg)
        runner.model.to(device)  # mmengine picks the GPU when there is one
        batches = list(itertools.islice(iter(Runner.build_dataloader(loader_cfg)), num_batches))
        runner._train_dataloader = DataLoader(batches, batch_size=1, collate_fn=_the_batch)

        model_cfg = cfg.model.model_cfg.to_dict()
        loss_cfg = cfg.model.loss
        clip = build_open_clip_model(model_cfg=model_cfg).to(device)
        tokenizer = build_tokenizer(model_cfg=model_cfg)
        optimizer_cfg = cfg.optim_wrapper.optimizer
        # the recipe's no-decay parameters: gains, biases, embeddings, the temperature
        groups = dict(decay=[], no_decay=[])
        for name, parameter in clip.named_parameters():
            exempt = parameter.ndim < 2 or 'embedding' in name or name == 'logit_scale'
            groups['no_decay' if exempt else 'decay'].append(parameter)
        optimizer = torch.optim.AdamW(
            [dict(params=groups['decay']), dict(params=groups['no_decay'], weight_decay=0.0)],
            lr=optimizer_cfg.lr, betas=optimizer_cfg.betas, eps=optimizer_cfg.eps,
            weight_decay=optimizer_cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01,
                                                      total_iters=50)
        mean = torch.tensor(CLIP_PIXEL_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_PIXEL_STD, device=device).view(1, 3, 1, 1)

        def plain_step(index: int) -> float:
            batch = batches[index % len(batches)]
            images = torch.stack(batch['inputs']).to(device).float()[:, [2, 1, 0]]
            images = (images - mean) / std
            tokens = tokenizer([sample.text for sample in batch['data_samples']]).to(device)
            image_features = F.normalize(clip.encode_image(images), dim=-1)
            text_features = F.normalize(clip.encode_text(tokens), dim=-1)
            logits = clip.logit_scale.exp().clamp(max=loss_cfg.max_scale) * (
                image_features @ text_features.T)
            labels = torch.arange(len(logits), device=device)
            smoothing = loss_cfg.get('label_smoothing', 0.0)
            loss = (F.cross_entropy(logits, labels, label_smoothing=smoothing) +
                    F.cross_entropy(logits.T, labels, label_smoothing=smoothing)) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            return loss.item()

        def start(model):
            clip.load_state_dict(model.clip.state_dict())

        hook = _TakeTurnsHook(plain_step, start, device)
        runner.register_hook(hook)
        runner.train()
        memory = peak_memory(
            lambda: runner.model.train_step(copy.copy(batches[0]), runner.optim_wrapper), device)
        plain_memory = peak_memory(lambda: plain_step(0), device)
    first_runner, first_plain = hook.losses[0]
    difference = abs(first_runner - first_plain)
    runner_times, plain_times = hook.runner_times[2:], hook.plain_times[2:]
    median_ratio = statistics.median(plain_times) / statistics.median(runner_times)
    return dict(name='CLIP recipe step: vlkd / mmengine Runner vs plain PyTorch loop',
                setting=f"clip_shapes_tiny.py, batch {len(batches[0]['inputs'])}, fastest of "
                        f'{steps} iterations in turns (medians: {median_ratio:.2f})',
                agreement=f'first-step loss diff {difference:.1e}',
                passed=difference <= 1e-4 * max(1.0, abs(first_plain)),
                ours=min(runner_times), theirs=min(plain_times),
                ours_memory=memory, theirs_memory=plain_memory)


def bench_vit_matmul(device: torch.device, repeats: int, batch: int, matmul_size: int,
                     model_name: Optional[str] = 'ViT-B-32',
                     model_cfg: Optional[dict] = None, min_seconds: float = 2.0) -> dict:
    """A CLIP ViT training step (both towers, ITC, backward, AdamW; random images and
    tokens) against ``torch.mm`` of two float32 (matmul_size, matmul_size) matrices. The
    step's FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls,
    convolutions and attention of forward and backward; elementwise work and the optimizer
    are not counted). The row's baseline time is what those FLOPs take at the measured
    ``torch.mm`` rate, so baseline / vlkd is the fraction of matmul throughput the step
    achieves."""
    torch.manual_seed(0)
    model = build_open_clip_model(model_name, model_cfg).to(device)
    loss_fn = ImageTextContrastiveLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    g = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=g, device=device)
    tokens = torch.randint(0, model.vocab_size, (batch, model.context_length), generator=g,
                           device=device)
    a = torch.randn(matmul_size, matmul_size, generator=g, device=device)
    b = torch.randn(matmul_size, matmul_size, generator=g, device=device)

    def step():
        loss = loss_fn(model.encode_image(images), model.encode_text(tokens), model.logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def matmul():
        torch.mm(a, b)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step_time, matmul_time = best_times(step, matmul, repeats, device, min_seconds)
    matmul_rate = 2 * matmul_size ** 3 / matmul_time
    name = model_name or f"ViT {model_cfg['vision_cfg']['width']}-wide"
    return dict(name='ViT training step vs the machine\'s torch.mm throughput',
                setting=f'{name} CLIP, batch {batch}, fp32; {flops / 1e9:.1f} GFLOP/step; '
                        f'mm {matmul_size}^2: {matmul_rate / 1e9:.0f} GFLOP/s',
                agreement=f'step {flops / step_time / 1e9:.1f} GFLOP/s',
                passed=flops > 0,
                ours=step_time, theirs=flops / matmul_rate,
                ours_memory=peak_memory(step, device), theirs_memory=peak_memory(matmul, device))
