"""WRA against POT's exact optimal transport (``ot.emd2`` / ``ot.emd`` on each sample's real
words and regions), including padded samples.

Tolerances: IPOT's iterates converge to the exact OT plan, so with 2000 iterations the
distance must agree with ``ot.emd2`` to 1e-4 (distances lie in [0, 2]; on random problems
like these the gap measured 1e-5 at most) and the plan with ``ot.emd``'s plan. With
UNITER's 50 iterations the plan's columns are exact but its rows are off by ``delta`` (L1);
rounding it to a feasible plan moves at most ``2 delta`` of mass (Altschuler et al. 2017,
lemma 7), at a cost of at most ``2 delta max C``, so ``D >= OT - 2 delta max C`` must hold
exactly, while ``D - OT`` is only measured (1.8e-3 at most over 64 random problems) and
bounded here by 1e-2.
"""
import os
import subprocess
import sys

import numpy as np
import ot
import pytest
import torch

from vlkd.registry import MODELS
from vlkd.vlp.objectives import WordRegionAlignmentLoss
from vlkd.vlp.objectives.wra import cosine_cost, ipot


def padded_batch(batch=12, max_words=9, max_regions=11, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(batch, max_words, dim, generator=g, dtype=torch.float64)
    regions = torch.randn(batch, max_regions, dim, generator=g, dtype=torch.float64)
    num_words = torch.randint(1, max_words + 1, (batch,), generator=g)
    num_regions = torch.randint(1, max_regions + 1, (batch,), generator=g)
    num_words[0], num_regions[0] = max_words, max_regions  # one sample without padding
    word_mask = torch.arange(max_words) < num_words[:, None]
    region_mask = torch.arange(max_regions) < num_regions[:, None]
    return words, regions, word_mask, region_mask


def exact_ot(words, regions, word_mask, region_mask):
    """Per sample: (distance, plan) of POT's exact solver on the real rows and columns, with
    the cosine distance computed in numpy."""
    results = []
    for b in range(len(words)):
        w = words[b][word_mask[b]].numpy()
        r = regions[b][region_mask[b]].numpy()
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        cost = 1 - w @ r.T
        a, c = np.full(len(w), 1 / len(w)), np.full(len(r), 1 / len(r))
        results.append((ot.emd2(a, c, cost), ot.emd(a, c, cost), cost))
    return results


def test_converged_ipot_matches_exact_ot_on_padded_batches():
    words, regions, word_mask, region_mask = padded_batch()
    loss = WordRegionAlignmentLoss(num_iterations=2000)
    distance = loss.distance(words, regions, word_mask, region_mask)
    plan = ipot(cosine_cost(words, regions), word_mask, region_mask, num_iterations=2000)
    for b, (exact, exact_plan, _) in enumerate(exact_ot(words, regions, word_mask, region_mask)):
        assert distance[b].item() == pytest.approx(exact, abs=1e-4)
        real = plan[b][word_mask[b]][:, region_mask[b]].numpy()
        np.testing.assert_allclose(real, exact_plan, atol=1e-4)
        assert plan[b][~word_mask[b]].abs().sum() == 0
        assert plan[b][:, ~region_mask[b]].abs().sum() == 0


def test_default_iterations_are_certified_from_below_and_close_from_above():
    words, regions, word_mask, region_mask = padded_batch(batch=32, seed=1)
    distance = WordRegionAlignmentLoss().distance(words, regions, word_mask, region_mask)
    plan = ipot(cosine_cost(words, regions), word_mask, region_mask)
    for b, (exact, _, cost) in enumerate(exact_ot(words, regions, word_mask, region_mask)):
        real = plan[b][word_mask[b]][:, region_mask[b]].numpy()
        np.testing.assert_allclose(real.sum(0), 1 / real.shape[1], rtol=1e-12)
        delta = np.abs(real.sum(1) - 1 / real.shape[0]).sum()
        d = distance[b].item()
        assert d >= exact - 2 * delta * cost.max() - 1e-12
        assert d - exact <= 1e-2


def test_padding_does_not_change_a_sample():
    words, regions, word_mask, region_mask = padded_batch(seed=2)
    loss = WordRegionAlignmentLoss()
    batched = loss.distance(words, regions, word_mask, region_mask)
    for b in range(len(words)):
        alone = loss.distance(words[b:b + 1, word_mask[b]], regions[b:b + 1, region_mask[b]],
                              torch.ones(1, int(word_mask[b].sum()), dtype=torch.bool),
                              torch.ones(1, int(region_mask[b].sum()), dtype=torch.bool))
        assert batched[b].item() == pytest.approx(alone.item(), abs=1e-12)


def test_gradient_is_that_of_the_exact_plan():
    words, regions, word_mask, region_mask = padded_batch(batch=4, seed=3)
    words.requires_grad_(True)
    WordRegionAlignmentLoss(num_iterations=2000).distance(
        words, regions, word_mask, region_mask).sum().backward()
    exact_plans = [torch.from_numpy(p) for _, p, _ in exact_ot(words.detach(), regions,
                                                              word_mask, region_mask)]
    reference = words.detach().clone().requires_grad_(True)
    cost = cosine_cost(reference, regions)
    total = sum((cost[b][word_mask[b]][:, region_mask[b]] * exact_plans[b]).sum()
                for b in range(4))
    total.backward()
    torch.testing.assert_close(words.grad, reference.grad, atol=1e-5, rtol=0)


def test_loss_signs_matched_and_mismatched_pairs():
    words, regions, word_mask, region_mask = padded_batch(batch=4, seed=4)
    loss = MODELS.build(dict(type='WordRegionAlignmentLoss', num_iterations=2000,
                             loss_weight=0.5))
    exact = [e for e, _, _ in exact_ot(words, regions, word_mask, region_mask)]
    value = loss(words, regions, word_mask, region_mask, torch.tensor([1, 0, 1, 0]))
    expected = 0.5 * (exact[0] - exact[1] + exact[2] - exact[3]) / 4
    assert value.item() == pytest.approx(expected, abs=1e-4)
    assert loss(words, regions, word_mask, region_mask).item() == pytest.approx(
        0.5 * np.mean(exact), abs=1e-4)


def test_errors_name_the_expected_shapes():
    words, regions, word_mask, region_mask = padded_batch(batch=3)
    loss = WordRegionAlignmentLoss()
    with pytest.raises(ValueError, match=r'\(B, m, D\) and \(B, n, D\)'):
        loss(words, regions[..., :4], word_mask, region_mask)
    with pytest.raises(ValueError, match=r'word_mask must be \(B, m\) = \(3, 9\)'):
        loss(words, regions, word_mask[:, :4], region_mask)
    with pytest.raises(ValueError, match=r'is_match must be \(3,\)'):
        loss(words, regions, word_mask, region_mask, torch.tensor([1, 0]))
    word_mask[1] = False
    with pytest.raises(ValueError, match='sample 1 has no real word'):
        loss(words, regions, word_mask, region_mask)


def numpy_ipot(cost, beta, num_iterations, inner_iterations):
    """IPOT (Xie et al. 2020, algorithm 1) on one unpadded problem, written from the paper
    with numpy: b = 1/n, G = exp(-C / beta), T = 1; per iteration Q = G * T, then
    ``inner_iterations`` times a = mu / (Q b), b = nu / (Q^T a); T = diag(a) Q diag(b)."""
    m, n = cost.shape
    mu, nu = np.full(m, 1 / m), np.full(n, 1 / n)
    kernel, plan, b = np.exp(-cost / beta), np.ones((m, n)), np.full(n, 1 / n)
    for _ in range(num_iterations):
        q = kernel * plan
        for _ in range(inner_iterations):
            a = mu / (q @ b)
            b = nu / (q.T @ a)
        plan = a[:, None] * q * b[None, :]
    return plan


@pytest.mark.parametrize('beta, inner_iterations', [(0.5, 1), (0.2, 3)])
def test_batched_iterates_are_those_of_the_per_sample_algorithm(beta, inner_iterations):
    words, regions, word_mask, region_mask = padded_batch(seed=5)
    plan = ipot(cosine_cost(words, regions), word_mask, region_mask, beta=beta,
                num_iterations=30, inner_iterations=inner_iterations)
    for b, (_, _, cost) in enumerate(exact_ot(words, regions, word_mask, region_mask)):
        expected = numpy_ipot(cost, beta, 30, inner_iterations)
        real = plan[b][word_mask[b]][:, region_mask[b]].numpy()
        np.testing.assert_allclose(real, expected, rtol=1e-9, atol=1e-15)


TRITON_SCRIPT = """
import sys, torch
from vlkd.vlp.objectives.wra import ipot
cost, word_mask, region_mask = torch.load(sys.argv[1])
torch.save(ipot(cost, word_mask, region_mask, beta=float(sys.argv[3]), num_iterations=30,
                inner_iterations=int(sys.argv[4]), backend='triton'), sys.argv[2])
"""


@pytest.mark.parametrize('beta, inner_iterations', [(0.5, 1), (0.2, 3)])
def test_triton_kernel_iterates_are_those_of_the_per_sample_algorithm(tmp_path, beta,
                                                                      inner_iterations):
    """The CUDA kernel (:mod:`vlkd.vlp.objectives.ipot_kernel`), run by Triton's interpreter
    on the CPU (``TRITON_INTERPRET=1``, read when the kernel is defined: hence a separate
    process), on float32 problems whose padding is scattered, not only trailing."""
    words, regions, _, _ = padded_batch(seed=7)
    g = torch.Generator().manual_seed(7)
    word_mask = torch.rand(words.shape[:2], generator=g) < 0.7
    region_mask = torch.rand(regions.shape[:2], generator=g) < 0.7
    word_mask[:, 3], region_mask[:, 5] = True, True  # at least one real word and region
    cost = cosine_cost(words, regions).float()
    torch.save((cost, word_mask, region_mask), tmp_path / 'problem.pt')
    env = dict(os.environ, TRITON_INTERPRET='1')
    subprocess.run([sys.executable, '-c', TRITON_SCRIPT, str(tmp_path / 'problem.pt'),
                    str(tmp_path / 'plan.pt'), str(beta), str(inner_iterations)],
                   env=env, check=True)
    plan = torch.load(tmp_path / 'plan.pt')
    assert plan.dtype == torch.float32
    for b in range(len(cost)):
        real = cost[b][word_mask[b]][:, region_mask[b]].double().numpy()
        expected = numpy_ipot(real, beta, 30, inner_iterations)
        np.testing.assert_allclose(plan[b][word_mask[b]][:, region_mask[b]].numpy(), expected,
                                   rtol=1e-4, atol=1e-7)
        assert plan[b][~word_mask[b]].abs().sum() == 0
        assert plan[b][:, ~region_mask[b]].abs().sum() == 0


def test_unknown_backend_is_refused():
    words, regions, word_mask, region_mask = padded_batch(batch=2)
    with pytest.raises(ValueError, match="backend must be 'auto', 'torch' or 'triton'"):
        ipot(cosine_cost(words, regions), word_mask, region_mask, backend='cuda')
