"""ImageTextContrastiveLoss against the InfoNCE formula (numpy), open_clip's ClipLoss, and a
two-process gloo run against the single-process loss on the global batch."""
import math
import os
import socket

import numpy as np
import open_clip
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from vlkd.registry import MODELS
from vlkd.vlp.objectives.itc import ImageTextContrastiveLoss


def reference_loss(images, texts, scale, smoothing=0.0):
    """Symmetric InfoNCE written out with explicit loops over rows and columns (numpy)."""
    u = images / np.linalg.norm(images, axis=1, keepdims=True)
    v = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    n = len(u)

    def row_loss(a, b, i):
        logits = np.array([scale * float(a[i] @ b[j]) for j in range(n)])
        log_probs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        targets = np.full(n, smoothing / n)
        targets[i] += 1.0 - smoothing
        return -(targets * log_probs).sum()

    image_to_text = np.mean([row_loss(u, v, i) for i in range(n)])
    text_to_image = np.mean([row_loss(v, u, i) for i in range(n)])
    return (image_to_text + text_to_image) / 2


def random_features(n=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), \
        torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_matches_the_formula(smoothing):
    images, texts = random_features()
    log_scale = torch.tensor(math.log(7.0), dtype=torch.float64)
    loss = ImageTextContrastiveLoss(label_smoothing=smoothing)(images, texts, log_scale)
    expected = reference_loss(images.numpy(), texts.numpy(), 7.0, smoothing)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_matches_open_clip_clip_loss():
    images, texts = random_features(n=16, d=32, seed=1)
    log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
    ours = ImageTextContrastiveLoss()(images, texts, log_scale)
    theirs = open_clip.ClipLoss()(F.normalize(images, dim=-1), F.normalize(texts, dim=-1),
                                  log_scale.exp())
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10)


def test_scale_is_clamped_at_max_scale_without_gradient_beyond():
    images, texts = random_features()
    log_scale = torch.tensor(math.log(1000.0), dtype=torch.float64, requires_grad=True)
    loss = ImageTextContrastiveLoss(max_scale=100.0)(images, texts, log_scale)
    assert loss.item() == pytest.approx(reference_loss(images.numpy(), texts.numpy(), 100.0))
    loss.backward()
    assert log_scale.grad.item() == 0.0


def test_built_from_registry_with_weight_and_bad_arguments():
    loss = MODELS.build(dict(type='ImageTextContrastiveLoss', loss_weight=2.0))
    images, texts = random_features()
    log_scale = torch.tensor(0.0, dtype=torch.float64)
    assert loss(images, texts, log_scale).item() == pytest.approx(
        2 * reference_loss(images.numpy(), texts.numpy(), 1.0))
    with pytest.raises(ValueError, match='label_smoothing'):
        ImageTextContrastiveLoss(label_smoothing=1.0)
    with pytest.raises(ValueError, match='matching rows'):
        loss(images, texts[:4], log_scale)


# -- torch.distributed: two CPU processes (gloo) -----------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _distributed_worker(rank, world_size, port, images, texts, log_scale, out):
    """Both variants (global and local loss) on this process's rows of the batch."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        n = len(images) // world_size
        for local_loss in (False, True):
            local_images = images[rank * n:(rank + 1) * n].clone().requires_grad_(True)
            local_texts = texts[rank * n:(rank + 1) * n].clone().requires_grad_(True)
            loss = ImageTextContrastiveLoss(local_loss=local_loss)(local_images, local_texts,
                                                                   log_scale)
            loss.backward()
            reference = open_clip.ClipLoss(local_loss=local_loss, gather_with_grad=True,
                                           rank=rank, world_size=world_size)(
                F.normalize(local_images.detach(), dim=-1),
                F.normalize(local_texts.detach(), dim=-1), log_scale.exp())
            out[(rank, local_loss)] = (loss.item(), reference.item(), local_images.grad,
                                       local_texts.grad)
    finally:
        dist.destroy_process_group()


def test_two_processes_gather_negatives_with_gradient():
    world_size = 2
    images, texts = random_features(n=8, d=16, seed=2)
    log_scale = torch.tensor(math.log(10.0), dtype=torch.float64)
    out = mp.Manager().dict()
    mp.spawn(_distributed_worker, nprocs=world_size, join=True,
             args=(world_size, _free_port(), images, texts, log_scale, out))

    # single process, global batch: the loss and its gradient w.r.t. every feature
    all_images = images.clone().requires_grad_(True)
    all_texts = texts.clone().requires_grad_(True)
    global_loss = ImageTextContrastiveLoss()(all_images, all_texts, log_scale)
    global_loss.backward()
    n = len(images) // world_size
    for local_loss in (False, True):
        mean_loss = np.mean([out[(r, local_loss)][0] for r in range(world_size)])
        assert mean_loss == pytest.approx(global_loss.item(), rel=1e-10)
        for rank in range(world_size):
            loss, reference, image_grad, text_grad = out[(rank, local_loss)]
            assert loss == pytest.approx(reference, rel=1e-10)  # open_clip, same process
            rows = slice(rank * n, (rank + 1) * n)
            # all_gather's backward sums the gradients of every process's loss, so a
            # process's gradient w.r.t. its rows is world_size times the global one; DDP's
            # averaging of parameter gradients over the processes divides that out again.
            np.testing.assert_allclose(image_grad / world_size, all_images.grad[rows],
                                       atol=1e-12)
            np.testing.assert_allclose(text_grad / world_size, all_texts.grad[rows],
                                       atol=1e-12)
