"""BaseNovelAccuracy against accuracies counted with plain loops."""
import math

import pytest
import torch

from vlkd.prompt import BaseNovelAccuracy, base_novel_accuracy, harmonic_mean
from vlkd.prompt.classifier import ClassVocabularyError

CLASSES = ['a', 'b', 'c', 'd', 'e']
NOVEL = ['b', 'e']


def loop_reference(scores, labels):
    """Counted one sample at a time: all classes; base samples among base classes; novel
    samples among novel classes."""
    base_ids = [i for i, c in enumerate(CLASSES) if c not in NOVEL]
    novel_ids = [i for i, c in enumerate(CLASSES) if c in NOVEL]
    hits = dict(top1=[], base=[], novel=[])
    for row, label in zip(scores.tolist(), labels.tolist()):
        hits['top1'].append(max(range(len(row)), key=lambda j: row[j]) == label)
        group = novel_ids if label in novel_ids else base_ids
        best = max(group, key=lambda j: row[j])
        hits['novel' if label in novel_ids else 'base'].append(best == label)
    result = {k: 100.0 * sum(v) / len(v) for k, v in hits.items()}
    result['H'] = 2 * result['base'] * result['novel'] / (result['base'] + result['novel'])
    return result


def test_accuracies_match_loops():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 5, generator=g)
    labels = torch.randint(0, 5, (200,), generator=g)
    scores[torch.arange(200), labels] += 0.8  # better than chance
    ours = base_novel_accuracy(scores, labels, CLASSES, NOVEL)
    expected = loop_reference(scores, labels)
    assert ours.keys() == expected.keys()
    for key in expected:
        assert ours[key] == pytest.approx(expected[key])
    assert base_novel_accuracy(scores, labels, CLASSES) == dict(top1=expected['top1'])


def test_harmonic_mean():
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)
    assert harmonic_mean(0.0, 0.0) == 0.0
    # the literature numbers: CoOp's 82.69 base / 63.22 novel give its 71.66
    assert harmonic_mean(82.69, 63.22) == pytest.approx(71.66, abs=0.01)


def test_metric_reports_and_checks_the_vocabulary():
    metric = BaseNovelAccuracy(novel_classes=NOVEL)
    metric.dataset_meta = dict(classes=CLASSES)
    samples = [dict(pred_score=torch.tensor([0.0, 1.0, 0, 0, 2.0]), gt_label=1,
                    score_classes=tuple(CLASSES)),
               dict(pred_score=torch.tensor([3.0, 1.0, 0, 0, 2.0]), gt_label=0,
                    score_classes=tuple(CLASSES))]
    metric.process(None, samples)
    results = metric.evaluate(2)
    # sample 0: wrong overall (e), wrong among novel (e); sample 1: right everywhere
    assert results == {'fewshot/top1': 50.0, 'fewshot/base': 100.0, 'fewshot/novel': 0.0,
                       'fewshot/H': 0.0}

    wrong_width = BaseNovelAccuracy()
    wrong_width.dataset_meta = dict(classes=CLASSES)
    wrong_width.process(None, [dict(pred_score=torch.zeros(3), gt_label=0)])
    with pytest.raises(ClassVocabularyError, match='scores \\[3\\] classes but the dataset has 5'):
        wrong_width.evaluate(1)

    wrong_order = BaseNovelAccuracy()
    wrong_order.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ClassVocabularyError, match='same order'):
        wrong_order.process(None, [dict(pred_score=torch.zeros(5), gt_label=0,
                                        score_classes=tuple(reversed(CLASSES)))])


def test_novel_group_without_samples_is_nan():
    scores = torch.eye(5)[[0, 2, 3]]
    result = base_novel_accuracy(scores, torch.tensor([0, 2, 3]), CLASSES, NOVEL)
    assert result['base'] == 100.0 and math.isnan(result['novel'])
