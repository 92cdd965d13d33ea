"""vlkd's pretraining objectives against reference implementations, on the same inputs.

Each ``bench_*`` returns a row: ``name``, ``setting``, ``agreement`` (text), ``passed``
(whether the values agree within the stated tolerance), ``ours`` / ``theirs`` (best wall
time, s, of :func:`best_times`) and ``ours_memory`` / ``theirs_memory`` (peak bytes of one
call, :func:`peak_memory`).
"""
import math

import numpy as np
import open_clip
import ot
import torch
import torch.nn.functional as F

from vlkd.vlp.objectives import ImageTextContrastiveLoss, sparsemax
from vlkd.vlp.objectives.wra import cosine_cost, ipot, ipot_solver
from .measure import best_times, peak_memory


def timed_row(ours, theirs, repeats: int, device: torch.device, min_seconds: float,
              **row) -> dict:
    """``row`` with the times (:func:`best_times`) and peak memory of ``ours()`` and
    ``theirs()``."""
    row['ours'], row['theirs'] = best_times(ours, theirs, repeats, device, min_seconds)
    row['ours_memory'] = peak_memory(ours, device)
    row['theirs_memory'] = peak_memory(theirs, device)
    return row


def bench_itc(batch: int, device: torch.device, repeats: int, dim: int = 512,
              min_seconds: float = 2.0) -> dict:
    """``ImageTextContrastiveLoss`` vs open_clip's ``ClipLoss``, forward + backward."""
    g = torch.Generator(device=device).manual_seed(batch)
    images = torch.randn(batch, dim, generator=g, device=device, requires_grad=True)
    texts = torch.randn(batch, dim, generator=g, device=device, requires_grad=True)
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

    value = run_theirs().item()
    difference = abs(run_ours().item() - value)
    return timed_row(run_ours, run_theirs, repeats, device, min_seconds,
                     name='ITC loss vs open_clip ClipLoss (fwd+bwd)',
                     setting=f'batch {batch}, D {dim}, fp32',
                     agreement=f'abs diff {difference:.1e}',
                     passed=difference <= 1e-5 * max(1.0, abs(value)))


def bench_wra(device: torch.device, repeats: int, batch: int = 32, max_words: int = 20,
              max_regions: int = 36, iterations: int = 50, dim: int = 768,
              min_seconds: float = 2.0, backend: str = 'auto') -> dict:
    """Transport distances of a batch of word-region cosine cost matrices: vlkd's batched
    :func:`ipot` (all samples at once, padded, on ``device``) vs POT's exact ``ot.emd2``
    called per sample on the sample's own unpadded cost matrix (float64 numpy, as POT's
    network simplex takes it). Both start from the same (B, m, n) cost tensor; computing it
    from the features is common to both and left out. Word / region counts are drawn
    between a quarter of the maximum and the maximum. ``backend``: :func:`ipot`'s solver
    (``'auto'``: the Triton kernel on CUDA, the PyTorch loop on the CPU)."""
    g = torch.Generator().manual_seed(0)
    words = torch.randn(batch, max_words, dim, generator=g)
    regions = torch.randn(batch, max_regions, dim, generator=g)
    num_words = torch.randint(max(1, max_words // 4), max_words + 1, (batch,), generator=g)
    num_regions = torch.randint(max(1, max_regions // 4), max_regions + 1, (batch,), generator=g)
    word_mask = (torch.arange(max_words) < num_words[:, None]).to(device)
    region_mask = (torch.arange(max_regions) < num_regions[:, None]).to(device)
    cost = cosine_cost(words.to(device), regions.to(device))
    sizes = list(zip(num_words.tolist(), num_regions.tolist()))

    def run_ours():
        plan = ipot(cost, word_mask, region_mask, num_iterations=iterations, backend=backend)
        return (cost * plan).sum(dim=(1, 2)).cpu().double().numpy()

    def run_theirs():
        costs = cost.cpu().double().numpy()
        return np.array([ot.emd2(np.full(m, 1 / m), np.full(n, 1 / n), costs[b, :m, :n])
                         for b, (m, n) in enumerate(sizes)])

    difference = np.abs(run_ours() - run_theirs())
    # the bound tests/vlp/objectives/test_wra.py puts on 50 iterations (more: closer)
    tolerance = 1e-2
    solver = dict(torch='PyTorch loop', triton='Triton kernel')[ipot_solver(cost, backend)]
    return timed_row(run_ours, run_theirs, repeats, device, min_seconds,
                     name=f'WRA: batched IPOT ({solver}) vs per-sample POT ot.emd2 loop',
                     setting=f'batch {batch}, <={max_words} words x <={max_regions} regions, '
                             f'{iterations} iterations, from the cost matrices',
                     agreement=f'max abs diff {difference.max():.1e} (mean '
                               f'{difference.mean():.1e})',
                     passed=bool(difference.max() <= tolerance))


def plain_sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Textbook sort-based sparsemax over the last dim, differentiated by autograd."""
    z_sorted = z.sort(dim=-1, descending=True).values
    cumulative = z_sorted.cumsum(dim=-1)
    rank = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    support_size = (1 + rank * z_sorted > cumulative).sum(dim=-1, keepdim=True)
    tau = (cumulative.gather(-1, support_size - 1) - 1) / support_size
    return (z - tau).clamp(min=0)


def bench_sparsemax(device: torch.device, repeats: int, rows: int = 512,
                    columns: int = 16384, min_seconds: float = 2.0) -> dict:
    """vlkd's sparsemax (closed-form backward) vs :func:`plain_sparsemax` + autograd."""
    g = torch.Generator(device=device).manual_seed(0)
    z = (3 * torch.randn(rows, columns, generator=g, device=device)).requires_grad_(True)
    upstream = torch.randn(rows, columns, generator=g, device=device)

    def run(fn):
        def step():
            z.grad = None
            out = fn(z)
            (out * upstream).sum().backward()
            return out.detach(), z.grad.clone()
        return step

    ours, theirs = run(sparsemax), run(plain_sparsemax)
    (p1, g1), (p2, g2) = ours(), theirs()
    value_diff = (p1 - p2).abs().max().item()
    grad_diff = (g1 - g2).abs().max().item()
    return timed_row(ours, theirs, repeats, device, min_seconds,
                     name='sparsemax vs plain sort-based + autograd (fwd+bwd)',
                     setting=f'{rows} x {columns}, fp32',
                     agreement=f'max abs diff {value_diff:.1e} (values), {grad_diff:.1e} '
                               '(grads)',
                     passed=value_diff <= 1e-5 and grad_diff <= 1e-4)
