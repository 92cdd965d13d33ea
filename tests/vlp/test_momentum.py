"""Momentum distillation: the EMA update against its formula over several steps, the alpha
ramp, the feature queue against a plain FIFO (and gathered under two processes), and the
distilled ITC / MLM losses against soft-target cross-entropies written with loops."""
import collections
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vlkd.registry import MODELS
from vlkd.vlp.momentum import FeatureQueue, MomentumContrastiveLoss, MomentumModel, ramped_alpha
from vlkd.vlp.objectives import MaskedLanguageModelingLoss

# the two-process helper lives beside the objective tests; spawned processes import it by
# name too, so its folder stays on the path
sys.path.insert(0, str(Path(__file__).parent / 'objectives'))
from _distributed import run_in_processes  # noqa: E402


def small_net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_ema_update_follows_the_formula_over_steps():
    torch.manual_seed(0)
    online = small_net()
    momentum = MomentumModel(online, momentum=0.9)
    assert all(not p.requires_grad for p in momentum.parameters())
    expected = {name: p.detach().numpy().copy() for name, p in online.named_parameters()}
    optimizer = torch.optim.SGD(online.parameters(), lr=0.5)
    for _ in range(3):
        online(torch.randn(8, 3)).pow(2).sum().backward()  # train mode: updates BN stats
        optimizer.step()
        optimizer.zero_grad()
        momentum.update(online)
        for name, p in online.named_parameters():
            expected[name] = 0.9 * expected[name] + 0.1 * p.detach().numpy()
    for name, p in momentum.module.named_parameters():
        np.testing.assert_allclose(p.numpy(), expected[name], rtol=1e-6, atol=1e-7)
        assert not np.allclose(p.numpy(), dict(online.named_parameters())[name].detach().numpy())
    torch.testing.assert_close(momentum.module[1].running_mean, online[1].running_mean)
    out = momentum(torch.randn(5, 3))
    assert not out.requires_grad


def test_update_rejects_a_different_module():
    momentum = MomentumModel(small_net())
    with pytest.raises(ValueError, match='differing names'):
        momentum.update(nn.Linear(3, 2))
    with pytest.raises(ValueError, match='momentum must be in'):
        MomentumModel(small_net(), momentum=1.5)


def test_alpha_ramp():
    assert [ramped_alpha(i, 0.4, 100) for i in (0, 25, 100, 1000)] == pytest.approx(
        [0.0, 0.1, 0.4, 0.4])
    assert ramped_alpha(0, 0.4) == 0.4


def test_queue_is_a_fifo():
    queue = FeatureQueue(size=5, dim=2)
    reference = collections.deque(maxlen=5)
    assert queue.snapshot().shape == (0, 2)
    for step, n in enumerate([2, 2, 3, 7, 1]):
        rows = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2) + 100 * step
        snapshot_before, reference_before = queue.snapshot(), list(reference)
        queue.enqueue(rows)
        reference.extend(rows.tolist())
        assert queue.snapshot().tolist() == list(reference)  # oldest first
        assert snapshot_before.tolist() == reference_before  # a copy: not changed by enqueue
    state = queue.state_dict()
    resumed = FeatureQueue(size=5, dim=2)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.snapshot(), queue.snapshot())
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        queue.enqueue(torch.zeros(3, 4))


def soft_cross_entropy(logits, targets):
    top = logits.max()
    log_probs = logits - top - np.log(np.exp(logits - top).sum())
    return -(targets * log_probs).sum()


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_itc(u, v, um, vm, scale, alpha, u_queue, v_queue):
    """ALBEF's distilled ITC with loops: columns are momentum features, then the queue."""
    def norm(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    u, v, um, vm, u_queue, v_queue = map(norm, (u, v, um, vm, u_queue, v_queue))
    text_columns = np.concatenate([vm, v_queue])
    image_columns = np.concatenate([um, u_queue])
    total = 0.0
    for queries, momentum_queries, columns in ((u, um, text_columns), (v, vm, image_columns)):
        for i in range(len(queries)):
            logits = np.array([scale * queries[i] @ c for c in columns])
            soft = softmax(np.array([scale * momentum_queries[i] @ c for c in columns]))
            hard = np.zeros(len(columns))
            hard[i] = 1.0
            total += soft_cross_entropy(logits, (1 - alpha) * hard + alpha * soft)
    return total / (2 * len(u))


def features(n=4, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(m, d, generator=g, dtype=torch.float64) for m in (n, n, n, n, k, k)]


@pytest.mark.parametrize('alpha', [0.0, 0.4])
def test_distilled_contrastive_loss_matches_the_manual_computation(alpha):
    u, v, um, vm, u_queue, v_queue = features()
    loss = MODELS.build(dict(type='MomentumContrastiveLoss', loss_weight=2.0))
    value = loss(u, v, um, vm, torch.tensor(math.log(8.0), dtype=torch.float64), alpha,
                 u_queue, v_queue)
    expected = reference_itc(*(x.numpy() for x in (u, v, um, vm)), 8.0, alpha,
                             u_queue.numpy(), v_queue.numpy())
    assert value.item() == pytest.approx(2.0 * expected, rel=1e-10)


def test_distilled_contrastive_loss_errors():
    u, v, um, vm, u_queue, _ = features()
    loss = MomentumContrastiveLoss()
    with pytest.raises(ValueError, match=r'momentum_text_features must be \(N, D\) = \(4, 6\)'):
        loss(u, v, um, vm[:3], torch.tensor(0.0), 0.4)
    with pytest.raises(ValueError, match=r'image_queue must be \(K, 6\)'):
        loss(u, v, um, vm, torch.tensor(0.0), 0.4, u_queue[:, :2])
    with pytest.raises(ValueError, match='alpha'):
        loss(u, v, um, vm, torch.tensor(0.0), 1.5)


def test_distilled_mlm_with_a_momentum_head():
    torch.manual_seed(1)
    online = MaskedLanguageModelingLoss(hidden_dim=6, vocab_size=11).double()
    momentum = MomentumModel(online, momentum=0.5)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(0.5 * torch.randn_like(p))  # a training step away from the copy
    hidden = torch.randn(2, 5, 6, dtype=torch.float64)
    momentum_hidden = hidden + 0.1 * torch.randn_like(hidden)
    labels = torch.full((2, 5), -100)
    labels[0, 2], labels[1, 0], labels[1, 4] = 3, 7, 10
    momentum_logits, _ = momentum.module.predict(momentum_hidden, labels)
    value = online(hidden, labels, soft_targets=momentum_logits.softmax(-1), alpha=0.3)
    with torch.no_grad():
        online_logits = online.head(hidden).numpy()
        teacher_logits = momentum.module.head(momentum_hidden).numpy()
    terms = []
    for b, t in [(0, 2), (1, 0), (1, 4)]:
        hard = np.eye(11)[labels[b, t]]
        targets = 0.7 * hard + 0.3 * softmax(teacher_logits[b, t])
        terms.append(soft_cross_entropy(online_logits[b, t], targets))
    assert value.item() == pytest.approx(np.mean(terms), rel=1e-10)


def _worker(rank, world_size, u, v, um, vm):
    queue = FeatureQueue(size=6, dim=u.shape[1]).double()
    n = len(u) // world_size
    rows = slice(rank * n, (rank + 1) * n)
    queue.enqueue(um[rows])
    loss = MomentumContrastiveLoss()(u[rows], v[rows], um[rows], vm[rows],
                                     torch.tensor(math.log(8.0), dtype=torch.float64), 0.4,
                                     queue.snapshot(), queue.snapshot())
    return queue.snapshot(), loss.item()


@pytest.mark.slow  # two spawned processes: about 15 s on 2 cores
def test_two_processes_enqueue_everybody_and_score_all_momentum_columns():
    u, v, um, vm, _, _ = features(n=4)
    results = run_in_processes(_worker, u, v, um, vm)
    for snapshot, _ in results:
        torch.testing.assert_close(snapshot, um)  # both ranks' rows, in rank order
    single = MomentumContrastiveLoss()(u, v, um, vm,
                                       torch.tensor(math.log(8.0), dtype=torch.float64), 0.4,
                                       um, um)
    assert np.mean([loss for _, loss in results]) == pytest.approx(single.item(), rel=1e-10)
