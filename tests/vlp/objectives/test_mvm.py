"""MVM: the visual masking function (exact counts, padding never masked, uniform choice by
chi-square), and the regression / hard / soft classification losses against their formulas
written with loops in numpy."""
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from vlkd.registry import MODELS
from vlkd.vlp.objectives.mvm import (MaskedFeatureClassificationLoss, mask_visual_features,
                                     mask_visual_tokens)

VALID = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                      [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
                      [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])


def test_masks_exact_counts_of_real_tokens_uniformly():
    valid = VALID.repeat(1500, 1).bool()
    mask = mask_visual_tokens(valid, 0.3, torch.Generator().manual_seed(0))
    assert not (mask & ~valid).any()
    counts = mask.sum(1).reshape(1500, 4)
    # round(0.3 n), at least one token when there is one: n = 10, 4, 5, 0
    assert (counts == torch.tensor([3, 1, 2, 0])).all()
    for row, n_masked in ((0, 3), (1, 1), (2, 2)):
        frequencies = mask[row::4][:, VALID[row].bool()].sum(0).numpy()
        assert chisquare(frequencies).pvalue > 1e-3
        assert frequencies.sum() == 1500 * n_masked


def test_masked_features_are_replaced_by_the_embedding():
    torch.manual_seed(1)
    features = torch.randn(4, 10, 3)
    embedding = torch.tensor([7.0, 8.0, 9.0])
    masked, mask = mask_visual_features(features, 0.5, VALID, embedding)
    for b in range(4):
        for n in range(10):
            expected = embedding if mask[b, n] else features[b, n]
            assert torch.equal(masked[b, n], expected)
    zeroed, mask = mask_visual_features(features, 0.5)
    assert mask.sum() == 20 and (zeroed[mask] == 0).all()


def test_masking_errors_name_the_expected_shapes():
    with pytest.raises(ValueError, match=r'valid_mask must be \(B, N\) = \(4, 10\)'):
        mask_visual_features(torch.zeros(4, 10, 3), 0.5, VALID[:, :5])
    with pytest.raises(ValueError, match=r'mask_embedding must be \(3,\)'):
        mask_visual_features(torch.zeros(4, 10, 3), 0.5, VALID, torch.zeros(4))
    with pytest.raises(ValueError, match=r'mask_ratio must be in \(0, 1\]'):
        mask_visual_tokens(VALID, 0.0)


def masked_positions(mask):
    return [(b, n) for b in range(mask.shape[0]) for n in range(mask.shape[1]) if mask[b, n]]


def setup(seed, hidden_dim=6, out=5):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 4, hidden_dim, generator=g, dtype=torch.float64)
    target = torch.randn(2, 4, out, generator=g, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    return hidden, target, mask


def test_feature_regression_is_mean_squared_error_on_masked_tokens():
    torch.manual_seed(2)
    loss = MODELS.build(dict(type='MaskedFeatureRegressionLoss', hidden_dim=6,
                             feature_dim=5)).double()
    hidden, features, mask = setup(3)
    with torch.no_grad():
        projected = loss.head(hidden).numpy()
    squares = [((projected[b, n] - features[b, n].numpy()) ** 2).sum()
               for b, n in masked_positions(mask)]
    expected = np.sum(squares) / (len(squares) * 5)
    assert loss(hidden, features, mask).item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match=r'features must be \(B, N, F\) = \(2, 4, 5\)'):
        loss(hidden, features[..., :4], mask)


@pytest.mark.parametrize('soft', [False, True])
def test_feature_classification_hard_and_soft_labels(soft):
    torch.manual_seed(4)
    loss = MaskedFeatureClassificationLoss(hidden_dim=6, num_classes=5, soft_labels=soft,
                                           loss_weight=1.5).double()
    hidden, scores, mask = setup(5)
    probs = torch.softmax(3 * scores, -1)
    probs[0, 2] = torch.tensor([0.0, 0.7, 0.0, 0.3, 0.0])  # zeros: 0 log 0 = 0
    with torch.no_grad():
        logits = loss.head(hidden).numpy()
    terms = []
    for b, n in masked_positions(mask):
        z = logits[b, n]
        log_q = z - z.max() - np.log(np.exp(z - z.max()).sum())
        p = probs[b, n].numpy()
        if soft:
            terms.append(sum(p[c] * (np.log(p[c]) - log_q[c]) for c in range(5) if p[c] > 0))
        else:
            terms.append(-log_q[np.argmax(p)])
    value = loss(hidden, probs, mask)
    assert value.item() == pytest.approx(1.5 * np.mean(terms), rel=1e-10)


def test_nothing_masked_and_shape_errors():
    loss = MaskedFeatureClassificationLoss(hidden_dim=6, num_classes=5)
    hidden = torch.randn(2, 4, 6, requires_grad=True)
    value = loss(hidden, torch.full((2, 4, 5), 0.2), torch.zeros(2, 4, dtype=torch.bool))
    value.backward()
    assert value.item() == 0.0 and hidden.grad is not None
    with pytest.raises(ValueError, match=r'class_probs must be \(B, N, C\) = \(2, 4, 5\)'):
        loss(hidden, torch.full((2, 4, 3), 0.2), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'mask must be bool \(B, N\) = \(2, 4\)'):
        loss(hidden, torch.full((2, 4, 5), 0.2), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r'hidden_states must be \(B, N, 6\)'):
        loss(hidden[..., :3], torch.full((2, 4, 5), 0.2), torch.ones(2, 4, dtype=torch.bool))
