"""OpenVocabIoUMetric against mmseg's IoUMetric and a numpy confusion-matrix computation."""
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

import vlkd  # noqa: F401
from vlkd.evaluation import OpenVocabIoUMetric
from vlkd.registry import METRICS

CLASSES = ['background', 'cat', 'dog', 'car', 'tree', 'sky']
UNSEEN = ['dog', 'sky']
IGNORE = 255


def random_batches(seed, num_batches=3, batch_size=2, size=(9, 11), absent=('tree',)):
    """Batches of (gt, pred) label maps; gt has ignored pixels; ``absent`` classes appear in
    neither gt nor prediction (their IoU is NaN and must not enter any mean)."""
    rng = np.random.default_rng(seed)
    present = [i for i, c in enumerate(CLASSES) if c not in absent]
    batches = []
    for _ in range(num_batches):
        batch = []
        for _ in range(batch_size):
            gt = rng.choice(present, size=size)
            # predictions right about 60 % of the time
            pred = np.where(rng.random(size) < 0.6, gt, rng.choice(present, size=size))
            gt[rng.random(size) < 0.1] = IGNORE
            batch.append((gt, pred))
        batches.append(batch)
    return batches


def samples_of(batch):
    return [dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                 gt_sem_seg=dict(data=torch.from_numpy(gt)[None])) for gt, pred in batch]


def evaluate(metric, batches):
    metric.dataset_meta = dict(classes=CLASSES)
    for batch in batches:
        metric.process({}, samples_of(batch))
    return metric.evaluate(sum(len(b) for b in batches))


def numpy_reference(batches, unseen):
    """Per-class IoU from a confusion matrix; nanmean per group; harmonic mean."""
    n = len(CLASSES)
    confusion = np.zeros((n, n), dtype=np.int64)
    for batch in batches:
        for gt, pred in batch:
            valid = gt != IGNORE
            confusion += np.bincount(n * gt[valid] + pred[valid], minlength=n * n).reshape(n, n)
    tp = np.diag(confusion).astype(float)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (confusion.sum(0) + confusion.sum(1) - tp)
        acc = tp / confusion.sum(1)
    unseen_idx = [CLASSES.index(c) for c in unseen]
    seen_idx = [i for i in range(n) if i not in unseen_idx]
    seen, unseen_miou = np.nanmean(iou[seen_idx]), np.nanmean(iou[unseen_idx])
    return dict(aAcc=100 * tp.sum() / confusion.sum(), mIoU=100 * np.nanmean(iou),
                mAcc=100 * np.nanmean(acc), mIoU_seen=100 * seen,
                mIoU_unseen=100 * unseen_miou,
                hIoU=100 * 2 * seen * unseen_miou / (seen + unseen_miou))


@pytest.mark.parametrize('seed', [0, 1])
def test_metric_matches_numpy_confusion_matrix(seed):
    batches = random_batches(seed)
    result = evaluate(OpenVocabIoUMetric(unseen_classes=UNSEEN), batches)
    expected = numpy_reference(batches, UNSEEN)
    assert set(result) == set(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=0.006), key  # rounded to 2 decimals


def test_all_class_keys_equal_mmseg_iou_metric():
    batches = random_batches(3)
    ours = evaluate(OpenVocabIoUMetric(unseen_classes=UNSEEN), batches)
    theirs = evaluate(IoUMetric(), batches)
    assert set(theirs) == {'aAcc', 'mIoU', 'mAcc'}
    for key, value in theirs.items():
        assert ours[key] == value


def test_absent_class_is_left_out_and_changes_nothing():
    """'tree' is absent: adding it to the seen group must not change mIoU_seen."""
    batches = random_batches(4)
    with_tree = evaluate(OpenVocabIoUMetric(unseen_classes=UNSEEN), batches)
    without = evaluate(OpenVocabIoUMetric(
        unseen_classes=UNSEEN, seen_classes=['background', 'cat', 'car']), batches)
    assert with_tree['mIoU_seen'] == without['mIoU_seen']


def test_perfect_and_zero_unseen():
    gt = np.array([[0, 1, 2], [3, 5, 255]])
    perfect = evaluate(OpenVocabIoUMetric(unseen_classes=UNSEEN), [[(gt, gt.clip(0, 5))]])
    assert perfect['mIoU_seen'] == perfect['mIoU_unseen'] == perfect['hIoU'] == 100.0
    wrong_unseen = np.where(np.isin(gt, [2, 5]), 1, gt).clip(0, 5)  # dog, sky -> cat
    result = evaluate(OpenVocabIoUMetric(unseen_classes=UNSEEN), [[(gt, wrong_unseen)]])
    assert result['mIoU_unseen'] == 0.0 and result['hIoU'] == 0.0
    assert 0 < result['mIoU_seen'] < 100


def test_groups_default_to_dataset_metainfo_and_registry():
    metric = METRICS.build(dict(type='OpenVocabIoUMetric'))
    metric.dataset_meta = dict(classes=CLASSES, unseen_classes=UNSEEN)
    assert metric.class_groups() == dict(seen=[0, 1, 3, 4], unseen=[2, 5])
    metric.dataset_meta = dict(classes=CLASSES, novel_classes=['cat'])  # vlkd-shapes wording
    assert metric.class_groups()['unseen'] == [1]


def test_open_vocabulary_evaluation_without_unseen_reports_mmseg_keys():
    metric = OpenVocabIoUMetric(unseen_classes=[])
    result = evaluate(metric, random_batches(5))
    assert set(result) == {'aAcc', 'mIoU', 'mAcc'}


def test_unknown_or_overlapping_class_names_are_named():
    metric = OpenVocabIoUMetric(unseen_classes=['dgo'])
    with pytest.raises(ValueError, match=r"'dgo' \(did you mean 'dog'\?\)"):
        metric.dataset_meta = dict(classes=CLASSES)
    with pytest.raises(ValueError, match='overlap'):
        OpenVocabIoUMetric(unseen_classes=['dog'], seen_classes=['dog', 'cat'])
    with pytest.raises(TypeError, match='list of class names'):
        OpenVocabIoUMetric(unseen_classes='dog')
