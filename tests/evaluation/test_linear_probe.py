"""Linear probe: the L-BFGS logistic regression against scikit-learn's, CLIP's C search on
a known score curve, and the whole protocol against the same protocol run with sklearn."""
import math

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.evaluation.linear_probe import (fit_logistic_regression, linear_probe,
                                          search_regularization)
from vlkd.registry import METRICS

sklearn_linear = pytest.importorskip('sklearn.linear_model')


def blobs(seed, n, centres, spread):
    """n points around each centre (K, D), labels 0..K-1 (as float64 tensors)."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=float)
    x = np.concatenate([c + spread * rng.standard_normal((n, centres.shape[1]))
                        for c in centres])
    y = np.repeat(np.arange(len(centres)), n)
    return torch.from_numpy(x), torch.from_numpy(y)


CENTRES = [[0, 0, 0, 0], [1.5, 0, 0.5, 0], [0, 1.5, 0, -0.5]]


def sklearn_probe(x, y, c):
    return sklearn_linear.LogisticRegression(C=c, tol=1e-10, max_iter=10000).fit(
        x.numpy(), y.numpy())


@pytest.mark.parametrize('c', [0.01, 1.0, 100.0])
def test_fit_matches_sklearn(c):
    x, y = blobs(0, 20, CENTRES, 1.0)
    probe = fit_logistic_regression(x, y + 3, c)  # labels need not start at 0
    reference = sklearn_probe(x, y + 3, c)
    assert probe.classes.tolist() == reference.classes_.tolist() == [3, 4, 5]
    probs = torch.softmax(probe.logits(x), dim=1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(x.numpy()), atol=1e-5)
    np.testing.assert_allclose(probe.weight.numpy(), reference.coef_, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(probe.predict(x).numpy(), reference.predict(x.numpy()))


def test_search_halves_the_step_around_the_peak():
    tried = []

    def score(c):
        tried.append(math.log10(c))
        return -(math.log10(c) - 1.3) ** 2

    best, scores = search_regularization(score)
    # coarse -6..6 by 2 -> 2; then +-1 -> 1; +-0.5 -> 1.5; +-0.25 -> 1.25; +-0.125 -> 1.25
    assert math.log10(best) == pytest.approx(1.25)
    assert [round(e, 3) for e in tried] == [-6, -4, -2, 0, 2, 4, 6, 1, 3, 0.5, 1.5, 1.25, 1.75,
                                            1.125, 1.375]
    assert len(scores) == 15 and scores[best] == max(scores.values())
    # equal scores: the strongest regularisation (smallest C) wins
    best, _ = search_regularization(lambda c: 1.0)
    assert best == pytest.approx(1e-6)


def test_protocol_matches_the_same_protocol_with_sklearn():
    train = blobs(1, 15, CENTRES, 1.2)
    val = blobs(2, 10, CENTRES, 1.2)
    test = blobs(3, 20, CENTRES, 1.2)
    result = linear_probe(train, val, test)

    def sklearn_val_accuracy(c):
        return 100 * sklearn_probe(*train, c).score(val[0].numpy(), val[1].numpy())

    c, scores = search_regularization(sklearn_val_accuracy)
    refit = sklearn_probe(torch.cat([train[0], val[0]]), torch.cat([train[1], val[1]]), c)
    assert result['C'] == pytest.approx(c)
    assert result['val_top1'] == pytest.approx(scores[c])
    assert result['top1'] == pytest.approx(100 * refit.score(test[0].numpy(), test[1].numpy()))
    assert 40 < result['top1'] < 100  # overlapping blobs: neither chance nor perfect


def test_metric_with_and_without_a_val_split():
    init_default_scope('vlkd')
    parts = dict(train=blobs(4, 12, CENTRES, 1.2), val=blobs(5, 8, CENTRES, 1.2),
                 test=blobs(6, 10, CENTRES, 1.2))
    samples = [dict(image_embedding=x.float(), gt_label=torch.tensor(int(y)), probe_split=name)
               for name, (xs, ys) in parts.items() for x, y in zip(xs, ys)]
    metric = METRICS.build(dict(type='LinearProbeAccuracy'))
    metric.process({}, samples)
    result = metric.evaluate(size=len(samples))
    # the metric gets float32 features (as a model gives them) and fits in float64
    expected = linear_probe(*((parts[n][0].float().double(), parts[n][1])
                              for n in ('train', 'val', 'test')))
    assert result == pytest.approx({f'linear_probe/{k}': v for k, v in expected.items()})

    # no val samples: part of train is held out to choose C; far-apart blobs: all right
    far = [[0, 0, 0, 0], [9, 0, 0, 0], [0, 9, 0, 0]]
    samples = [dict(feature=x, gt_label=int(y), probe_split=name)
               for name, seed in (('train', 7), ('test', 8))
               for x, y in zip(*blobs(seed, 10, far, 1.0))]
    metric = METRICS.build(dict(type='LinearProbeAccuracy', feature_key='feature'))
    metric.process({}, samples)
    assert metric.evaluate(size=len(samples))['linear_probe/top1'] == 100.0


def test_bad_input_is_named():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='LinearProbeAccuracy'))
    with pytest.raises(KeyError, match='probe_split'):
        metric.process({}, [dict(image_embedding=torch.ones(2), gt_label=1)])
    metric.process({}, [dict(image_embedding=torch.ones(2), gt_label=1, probe_split='train')])
    with pytest.raises(ValueError, match='needs train and test samples'):
        metric.evaluate(size=1)
    with pytest.raises(ValueError, match='at least two classes'):
        fit_logistic_regression(torch.ones(3, 2), torch.zeros(3, dtype=torch.long), 1.0)
