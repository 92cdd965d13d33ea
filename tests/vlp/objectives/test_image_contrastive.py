"""ImageContrastiveLoss against InfoNCE / NT-Xent written with loops over anchors and
candidates (numpy), and a two-process run against the single-process global batch."""
import numpy as np
import pytest
import torch
from _distributed import run_in_processes

from vlkd.registry import MODELS
from vlkd.vlp.objectives import ImageContrastiveLoss


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def info_nce(anchor, positive, candidates, tau):
    """-log softmax of the positive among the candidates (the positive is one of them)."""
    logits = np.array([anchor @ c for c in candidates]) / tau
    top = logits.max()
    return -(anchor @ positive / tau - top - np.log(np.exp(logits - top).sum()))


def nt_xent(q, k, tau):
    """SimCLR: 2N views; each view's positive is the other view of its image, its
    candidates are all 2N - 1 other views."""
    views = normalise(np.concatenate([q, k]))
    n = len(q)
    losses = [info_nce(views[a], views[(a + n) % (2 * n)],
                       [views[b] for b in range(2 * n) if b != a], tau) for a in range(2 * n)]
    return np.mean(losses)


def features(n=5, d=8, seed=0, k=0):
    g = torch.Generator().manual_seed(seed)
    q, keys, queue = (torch.randn(m, d, generator=g, dtype=torch.float64) for m in (n, n, k))
    return q, keys, queue


def test_batch_keys_as_negatives():
    q, k, _ = features()
    loss = ImageContrastiveLoss(temperature=0.2)(q, k)
    qn, kn = normalise(q.numpy()), normalise(k.numpy())
    expected = np.mean([info_nce(qn[i], kn[i], list(kn), 0.2) for i in range(len(qn))])
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_of_simclr():
    q, k, _ = features(seed=1)
    loss = ImageContrastiveLoss(temperature=0.5, query_negatives=True, symmetric=True)(q, k)
    assert loss.item() == pytest.approx(nt_xent(q.numpy(), k.numpy(), 0.5), rel=1e-10)


def test_moco_positive_against_a_queue_only():
    q, k, queue = features(seed=2, k=7)
    loss = ImageContrastiveLoss(temperature=0.07, batch_negatives=False)(q, k, queue)
    qn, kn, un = (normalise(x.numpy()) for x in (q, k, queue))
    expected = np.mean([info_nce(qn[i], kn[i], [kn[i], *un], 0.07) for i in range(len(qn))])
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_queue_adds_negatives_to_the_batch_and_gets_no_gradient():
    q, k, queue = features(seed=3, k=4)
    for x in (q, queue):
        x.requires_grad_(True)
    loss = MODELS.build(dict(type='ImageContrastiveLoss', temperature=0.3, symmetric=True,
                             loss_weight=2.0))(q, k, queue)
    qn, kn, un = (normalise(x.detach().numpy()) for x in (q, k, queue))
    forward = np.mean([info_nce(qn[i], kn[i], [*kn, *un], 0.3) for i in range(5)])
    backward = np.mean([info_nce(kn[i], qn[i], [*qn, *un], 0.3) for i in range(5)])
    assert loss.item() == pytest.approx(2.0 * (forward + backward) / 2, rel=1e-10)
    loss.backward()
    assert q.grad is not None and queue.grad is None


def test_bad_inputs_name_the_expected_shapes():
    q, k, queue = features(k=3)
    loss = ImageContrastiveLoss()
    with pytest.raises(ValueError, match=r'\(N, D\)'):
        loss(q, k[:3])
    with pytest.raises(ValueError, match=r'queue must be \(K, 8\)'):
        loss(q, k, queue[:, :4])
    with pytest.raises(ValueError, match='no negatives'):
        ImageContrastiveLoss(batch_negatives=False)(q, k)
    with pytest.raises(ValueError, match='temperature'):
        ImageContrastiveLoss(temperature=0.0)


def _worker(rank, world_size, q, k, queue):
    n = len(q) // world_size
    rows = slice(rank * n, (rank + 1) * n)
    local_q = q[rows].clone().requires_grad_(True)
    local_k = k[rows].clone().requires_grad_(True)
    loss = ImageContrastiveLoss(temperature=0.5, query_negatives=True, symmetric=True)(
        local_q, local_k, queue)
    loss.backward()
    return loss.item(), local_q.grad, local_k.grad


@pytest.mark.slow  # two spawned processes: about 15 s on 2 cores
def test_two_processes_see_the_negatives_of_the_global_batch():
    q, k, queue = features(n=6, seed=4, k=3)
    results = run_in_processes(_worker, q, k, queue)
    all_q, all_k = q.clone().requires_grad_(True), k.clone().requires_grad_(True)
    global_loss = ImageContrastiveLoss(temperature=0.5, query_negatives=True,
                                       symmetric=True)(all_q, all_k, queue)
    global_loss.backward()
    assert np.mean([r[0] for r in results]) == pytest.approx(global_loss.item(), rel=1e-10)
    for rank, (_, q_grad, k_grad) in enumerate(results):
        rows = slice(rank * 3, (rank + 1) * 3)
        # summed over both processes' losses by the gather; DDP's averaging divides it out
        np.testing.assert_allclose(q_grad / 2, all_q.grad[rows], atol=1e-12)
        np.testing.assert_allclose(k_grad / 2, all_k.grad[rows], atol=1e-12)
