"""FOM: the frame shuffle (a permutation of the picked real frames only, counts, uniform
over permutations by chi-square) and the loss against cross-entropy written with loops."""
import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from vlkd.registry import MODELS
from vlkd.vlp.objectives import FrameOrderModelingLoss, shuffle_frames

FRAME_MASK = torch.tensor([[1] * 10,
                           [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
                           [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]]).bool()


def test_shuffle_permutes_the_picked_real_frames():
    frames = torch.randn(3, 10, 4)
    shuffled, targets = shuffle_frames(frames, 0.3, FRAME_MASK,
                                       torch.Generator().manual_seed(0))
    for b in range(3):
        picked = [p for p in range(10) if targets[b, p] != -100]
        assert len(picked) == [3, 2, 0][b]  # round(0.3 n), at least 2, none for 1 frame
        assert all(FRAME_MASK[b, p] for p in picked)
        assert sorted(targets[b, picked].tolist()) == picked  # a permutation of themselves
        for p in range(10):
            source = targets[b, p].item() if p in picked else p
            assert torch.equal(shuffled[b, p], frames[b, source])


def test_shuffles_are_uniform_over_permutations():
    frames = torch.arange(3.0)[None, :, None].repeat(3000, 1, 1)
    _, targets = shuffle_frames(frames, 1.0, generator=torch.Generator().manual_seed(1))
    orders = [tuple(row) for row in targets.tolist()]
    counts = [orders.count(order) for order in itertools.permutations(range(3))]
    assert sum(counts) == 3000 and chisquare(counts).pvalue > 1e-3


def test_loss_is_cross_entropy_over_real_positions():
    torch.manual_seed(2)
    loss = MODELS.build(dict(type='FrameOrderModelingLoss', hidden_dim=6, max_frames=12,
                             loss_weight=2.0)).double()
    hidden = torch.randn(3, 10, 6, dtype=torch.float64)
    _, targets = shuffle_frames(torch.zeros(3, 10, 1), 0.5, FRAME_MASK,
                                torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = loss.head(hidden).numpy()
    terms = []
    for b in range(3):
        real = [k for k in range(10) if FRAME_MASK[b, k]]
        for p in range(10):
            if targets[b, p] == -100:
                continue
            z = logits[b, p, real]
            log_norm = z.max() + np.log(np.exp(z - z.max()).sum())
            terms.append(log_norm - logits[b, p, targets[b, p]])
    assert len(terms) == 5 + 3
    value = loss(hidden, targets, FRAME_MASK)
    assert value.item() == pytest.approx(2 * np.mean(terms), rel=1e-10)


def test_no_shuffled_frame_and_shape_errors():
    loss = FrameOrderModelingLoss(hidden_dim=6, max_frames=8)
    hidden = torch.randn(2, 8, 6, requires_grad=True)
    value = loss(hidden, torch.full((2, 8), -100))
    value.backward()
    assert value.item() == 0.0 and hidden.grad is not None
    with pytest.raises(ValueError, match=r'\(B, F, 6\) with F <= 8'):
        loss(torch.randn(2, 9, 6), torch.full((2, 9), -100))
    with pytest.raises(ValueError, match=r'targets must be \(B, F\) = \(2, 8\)'):
        loss(hidden, torch.full((2, 7), -100))
    with pytest.raises(ValueError, match=r'frame_mask must be \(B, F\) = \(3, 10\)'):
        shuffle_frames(torch.zeros(3, 10, 2), 0.5, FRAME_MASK[:, :5])
