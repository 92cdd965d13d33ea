"""ImageTextLabelContrastiveLoss against the UniCL formula written with loops (numpy), the
ITC loss when every label is distinct, and a two-process run against the global batch."""
import math

import numpy as np
import pytest
import torch
from _distributed import run_in_processes

from vlkd.registry import MODELS
from vlkd.vlp.objectives import ImageTextContrastiveLoss, ImageTextLabelContrastiveLoss


def reference_loss(images, texts, labels, scale, smoothing=0.0):
    """UniCL: each row's target is uniform over the columns with its label (numpy loops)."""
    u = images / np.linalg.norm(images, axis=1, keepdims=True)
    v = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    n = len(u)

    def direction(a, b):
        total = 0.0
        for i in range(n):
            logits = np.array([scale * a[i] @ b[j] for j in range(n)])
            log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            positives = [j for j in range(n) if labels[j] == labels[i]]
            targets = np.zeros(n)
            targets[positives] = 1.0 / len(positives)
            targets = (1 - smoothing) * targets + smoothing / n
            total -= targets @ log_probs
        return total / n

    return (direction(u, v) + direction(v, u)) / 2


def pairs(n=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64),
            torch.randn(n, d, generator=g, dtype=torch.float64))


@pytest.mark.parametrize('smoothing', [0.0, 0.2])
def test_pairs_sharing_a_label_are_positives(smoothing):
    images, texts = pairs()
    labels = torch.tensor([3, 1, 3, 0, 1, 3, 2])
    loss = ImageTextLabelContrastiveLoss(label_smoothing=smoothing)(
        images, texts, labels, torch.tensor(math.log(5.0)))
    expected = reference_loss(images.numpy(), texts.numpy(), labels.numpy(), 5.0, smoothing)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_distinct_labels_give_the_image_text_contrastive_loss():
    images, texts = pairs(seed=1)
    log_scale = torch.tensor(2.0, dtype=torch.float64)
    unicl = ImageTextLabelContrastiveLoss(label_smoothing=0.1)(
        images, texts, torch.arange(7) * 10, log_scale)
    itc = ImageTextContrastiveLoss(label_smoothing=0.1)(images, texts, log_scale)
    assert unicl.item() == pytest.approx(itc.item(), rel=1e-12)


def test_registry_weight_and_shape_errors():
    images, texts = pairs()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    loss = MODELS.build(dict(type='ImageTextLabelContrastiveLoss', loss_weight=3.0))
    value = loss(images, texts, labels, torch.tensor(0.0, dtype=torch.float64))
    expected = reference_loss(images.numpy(), texts.numpy(), labels.numpy(), 1.0)
    assert value.item() == pytest.approx(3 * expected, rel=1e-10)
    with pytest.raises(ValueError, match=r'labels must be integers of shape \(7,\)'):
        loss(images, texts, labels[:5], torch.tensor(0.0))
    with pytest.raises(ValueError, match=r'labels must be integers'):
        loss(images, texts, labels.double(), torch.tensor(0.0))
    with pytest.raises(ValueError, match=r'\(N, D\) with matching rows'):
        loss(images, texts[:, :4], labels, torch.tensor(0.0))


def _worker(rank, world_size, images, texts, labels, log_scale):
    n = len(images) // world_size
    rows = slice(rank * n, (rank + 1) * n)
    out = {}
    for local_loss in (False, True):
        local_images = images[rows].clone().requires_grad_(True)
        local_texts = texts[rows].clone().requires_grad_(True)
        loss = ImageTextLabelContrastiveLoss(local_loss=local_loss)(
            local_images, local_texts, labels[rows], log_scale)
        loss.backward()
        out[local_loss] = (loss.item(), local_images.grad, local_texts.grad)
    return out


@pytest.mark.slow  # two spawned processes: about 15 s on 2 cores
def test_two_processes_gather_features_and_labels():
    images, texts = pairs(n=8, seed=2)
    labels = torch.tensor([0, 1, 2, 0, 2, 3, 1, 0])  # positives across the two halves
    log_scale = torch.tensor(math.log(4.0), dtype=torch.float64)
    results = run_in_processes(_worker, images, texts, labels, log_scale)
    all_images = images.clone().requires_grad_(True)
    all_texts = texts.clone().requires_grad_(True)
    global_loss = ImageTextLabelContrastiveLoss()(all_images, all_texts, labels, log_scale)
    global_loss.backward()
    assert global_loss.item() == pytest.approx(
        reference_loss(images.numpy(), texts.numpy(), labels.numpy(), 4.0), rel=1e-10)
    for local_loss in (False, True):
        assert np.mean([r[local_loss][0] for r in results]) == pytest.approx(
            global_loss.item(), rel=1e-10)
        for rank, result in enumerate(results):
            _, image_grad, text_grad = result[local_loss]
            rows = slice(rank * 4, (rank + 1) * 4)
            np.testing.assert_allclose(image_grad / 2, all_images.grad[rows], atol=1e-12)
            np.testing.assert_allclose(text_grad / 2, all_texts.grad[rows], atol=1e-12)
