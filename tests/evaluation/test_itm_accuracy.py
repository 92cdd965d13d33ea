"""ITM accuracy on positive and swapped-negative pairs, by hand."""
import math

import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.registry import METRICS


def test_accuracies_by_hand():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ImageTextMatchingAccuracy'))
    # sample: (its caption, a swapped caption); logits > 0 mean "match"
    metric.process({}, [dict(itm_logits=torch.tensor([2.0, -1.0]), itm_labels=torch.tensor([1, 0])),
                        dict(itm_logits=torch.tensor([-0.5, 0.3]), itm_labels=torch.tensor([1, 0]))])
    metric.process({}, [dict(itm_logits=torch.tensor([0.1, -3.0, -2.0]),
                             itm_labels=torch.tensor([1, 0, 0]))])
    result = metric.evaluate(size=3)
    # positives: 2.0 right, -0.5 wrong, 0.1 right -> 2/3; negatives: -1 right, 0.3 wrong,
    # -3 right, -2 right -> 3/4; all 5 of 7
    assert result['itm/positive_accuracy'] == pytest.approx(100 * 2 / 3)
    assert result['itm/negative_accuracy'] == pytest.approx(75.0)
    assert result['itm/accuracy'] == pytest.approx(100 * 5 / 7)
    assert result['itm/balanced_accuracy'] == pytest.approx((100 * 2 / 3 + 75) / 2)


def test_threshold_and_missing_negatives():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ImageTextMatchingAccuracy', threshold=1.0))
    metric.process({}, [dict(itm_logits=[0.5, 1.5], itm_labels=[1, 1])])
    result = metric.evaluate(size=1)
    assert result['itm/accuracy'] == 50.0 and math.isnan(result['itm/negative_accuracy'])


def test_bad_input_is_named():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ImageTextMatchingAccuracy'))
    with pytest.raises(KeyError, match='itm_labels'):
        metric.process({}, [dict(itm_logits=torch.zeros(2))])
    with pytest.raises(ValueError, match='one entry per pair'):
        metric.process({}, [dict(itm_logits=torch.zeros(2), itm_labels=torch.zeros(3))])
    with pytest.raises(ValueError, match='0 or 1'):
        metric.process({}, [dict(itm_logits=torch.zeros(2), itm_labels=torch.tensor([1, 2]))])
