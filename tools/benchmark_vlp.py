"""Benchmark vlkd's pretraining objectives against reference implementations, in one run.

    python tools/benchmark_vlp.py [--device cpu|cuda] [--repeats 5]

Prints a Markdown table; every row is measured in this run, vlkd and its baseline on the
same inputs and device:

- ITC: ``ImageTextContrastiveLoss`` vs open_clip's ``ClipLoss``, forward + backward,
  D = 512, batch 256 and 1024;
- WRA: batched IPOT (``WordRegionAlignmentLoss.distance``, all samples at once) vs POT's
  exact ``ot.emd2`` in a loop over the samples, batch 32 of up to 20 words x 36 regions
  (padded), at UNITER's 50 iterations and at 1000;
- sparsemax: vlkd's sort-based function with its closed-form backward vs a plain sort-based
  implementation differentiated by autograd, forward + backward, 512 x 16384 (FDT-sized).

Times are the best of ``--repeats`` alternating runs after one warm-up (see
:func:`best_times`); ratio = baseline / vlkd (above 1: vlkd is faster). POT runs on the CPU
whatever ``--device`` is.
"""
import argparse
import math
import os
import platform
import time

import numpy as np
import open_clip
import ot
import torch
import torch.nn.functional as F

from vlkd.vlp.objectives import ImageTextContrastiveLoss, WordRegionAlignmentLoss, sparsemax


def best_times(ours, theirs, repeats: int, device: torch.device) -> tuple:
    """Best wall times (s) of ``ours()`` and ``theirs()`` over ``repeats`` alternating runs
    after one warm-up each: alternating exposes both to the same load of a shared machine,
    and the best run is the least disturbed by it."""
    def timed(fn):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    ours(), theirs()
    runs = [(timed(ours), timed(theirs)) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def bench_itc(batch: int, device: torch.device, repeats: int) -> dict:
    g = torch.Generator(device=device).manual_seed(batch)
    images = torch.randn(batch, 512, generator=g, device=device, requires_grad=True)
    texts = torch.randn(batch, 512, generator=g, device=device, requires_grad=True)
    log_scale = torch.tensor(math.log(1 / 0.07), device=device, requires_grad=True)
    ours, theirs = ImageTextContrastiveLoss(), open_clip.ClipLoss()

    def run_ours():
        loss = ours(images, texts, log_scale)
        loss.backward()
        return loss

    def run_theirs():  # open_clip takes normalised features and the scale itself
        loss = theirs(F.normalize(images, dim=-1), F.normalize(texts, dim=-1), log_scale.exp())
        loss.backward()
        return loss

    difference = abs(run_ours().item() - run_theirs().item())
    ours_time, theirs_time = best_times(run_ours, run_theirs, repeats, device)
    return dict(name='ITC loss vs open_clip ClipLoss (fwd+bwd)',
                setting=f'batch {batch}, D 512, fp32', agreement=f'abs diff {difference:.1e}',
                ours=ours_time, theirs=theirs_time)


def bench_wra(iterations: int, device: torch.device, repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    batch, max_words, max_regions, dim = 32, 20, 36, 768
    words = torch.randn(batch, max_words, dim, generator=g)
    regions = torch.randn(batch, max_regions, dim, generator=g)
    num_words = torch.randint(5, max_words + 1, (batch,), generator=g)
    num_regions = torch.randint(10, max_regions + 1, (batch,), generator=g)
    word_mask = torch.arange(max_words) < num_words[:, None]
    region_mask = torch.arange(max_regions) < num_regions[:, None]
    loss = WordRegionAlignmentLoss(num_iterations=iterations)
    on_device = [x.to(device) for x in (words, regions, word_mask, region_mask)]
    words64, regions64 = words.double().numpy(), regions.double().numpy()

    def run_ours():
        return loss.distance(*on_device).cpu()

    def run_theirs():  # per sample: cosine costs in numpy, exact OT by network simplex
        out = []
        for b in range(batch):
            w = words64[b, :num_words[b]]
            r = regions64[b, :num_regions[b]]
            w = w / np.linalg.norm(w, axis=1, keepdims=True)
            r = r / np.linalg.norm(r, axis=1, keepdims=True)
            out.append(ot.emd2(np.full(len(w), 1 / len(w)), np.full(len(r), 1 / len(r)),
                               1 - w @ r.T))
        return np.array(out)

    difference = np.abs(run_ours().double().numpy() - run_theirs())
    ours_time, theirs_time = best_times(run_ours, run_theirs, repeats, device)
    return dict(name='WRA: batched IPOT vs POT ot.emd2 loop',
                setting=f'batch 32, <=20 x <=36, D 768, {iterations} iterations',
                agreement=f'max abs diff {difference.max():.1e}, mean {difference.mean():.1e}',
                ours=ours_time, theirs=theirs_time)


def plain_sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Textbook sort-based sparsemax over the last dim, differentiated by autograd."""
    z_sorted = z.sort(dim=-1, descending=True).values
    cumulative = z_sorted.cumsum(dim=-1)
    rank = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    support_size = (1 + rank * z_sorted > cumulative).sum(dim=-1, keepdim=True)
    tau = (cumulative.gather(-1, support_size - 1) - 1) / support_size
    return (z - tau).clamp(min=0)


def bench_sparsemax(device: torch.device, repeats: int) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    z = (3 * torch.randn(512, 16384, generator=g, device=device)).requires_grad_(True)
    upstream = torch.randn(512, 16384, generator=g, device=device)

    def run(fn):
        def step():
            z.grad = None
            out = fn(z)
            (out * upstream).sum().backward()
            return out.detach(), z.grad.clone()
        return step

    ours, theirs = run(sparsemax), run(plain_sparsemax)
    (p1, g1), (p2, g2) = ours(), theirs()
    agreement = (f'max abs diff {(p1 - p2).abs().max().item():.1e} (values), '
                 f'{(g1 - g2).abs().max().item():.1e} (grads)')
    ours_time, theirs_time = best_times(ours, theirs, repeats, device)
    return dict(name='sparsemax vs plain sort-based + autograd (fwd+bwd)',
                setting='512 x 16384, fp32', agreement=agreement, ours=ours_time,
                theirs=theirs_time)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [bench_itc(256, device, args.repeats), bench_itc(1024, device, args.repeats),
            bench_wra(50, device, args.repeats), bench_wra(1000, device, args.repeats),
            bench_sparsemax(device, args.repeats)]
    hardware = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                else f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, '
                     f'{torch.get_num_threads()} torch threads')
    print(f'device: {device} ({hardware}); torch {torch.__version__}, open_clip '
          f'{open_clip.__version__}, POT {ot.__version__}')
    print('| comparison | setting | value agreement | vlkd (ms) | baseline (ms) | '
          'baseline / vlkd |')
    print('|---|---|---|---:|---:|---:|')
    for row in rows:
        print(f"| {row['name']} | {row['setting']} | {row['agreement']} | "
              f"{1000 * row['ours']:.2f} | {1000 * row['theirs']:.2f} | "
              f"{row['theirs'] / row['ours']:.2f} |")


if __name__ == '__main__':
    main()
