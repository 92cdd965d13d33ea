"""OpenVocabCocoMetric against COCO AP written from its definition and against pycocotools."""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import vlkd  # noqa: F401  (installs the compat layer before mmdet)
from vlkd.evaluation import OpenVocabCocoMetric
from vlkd.registry import METRICS

# Category ids are not contiguous, so a label -> category id mix-up shows.
CATEGORIES = [dict(id=2, name='apple'), dict(id=5, name='banana'), dict(id=7, name='cherry'),
              dict(id=11, name='dog'), dict(id=13, name='eel'), dict(id=17, name='fig')]
CLASSES = [c['name'] for c in CATEGORIES]
NAME_TO_ID = {c['name']: c['id'] for c in CATEGORIES}
IMAGE_SIZE = (100, 100)  # (height, width)
IOU_THRS = np.linspace(0.5, 0.95, 10)

# Hand-made set (boxes xyxy). 'fig' has no ground truth, 'cherry' has no prediction.
HAND_GT = {
    1: [('apple', [10, 10, 40, 40]), ('banana', [50, 50, 90, 90]), ('dog', [5, 60, 35, 95])],
    2: [('apple', [20, 20, 60, 60]), ('cherry', [60, 5, 95, 40]), ('eel', [10, 10, 30, 30]),
        ('dog', [40, 40, 80, 80])],
}
HAND_PRED = {  # (name, box, score)
    1: [('apple', [60, 0, 90, 20], 0.9),     # false positive, ranked above the apple hit
        ('banana', [50, 50, 90, 75], 0.7),   # IoU 0.625: a hit at IoU 0.50, 0.55, 0.60 only
        ('dog', [5, 60, 35, 95], 0.9)],
    2: [('apple', [20, 20, 60, 60], 0.8),
        ('eel', [10, 10, 30, 30], 0.95), ('dog', [40, 40, 80, 80], 0.6)],
}
# Expected by hand. apple: precision 0.5 up to recall 0.5 -> 51 of 101 recall points at 0.5.
APPLE_AP = 51 * 0.5 / 101
POOR = dict(classes=['apple', 'banana', 'cherry', 'fig'],  # fig has no GT: not averaged
            ap50=(APPLE_AP + 1.0 + 0.0) / 3, ap=(APPLE_AP + 0.3 + 0.0) / 3)
PERFECT = dict(classes=['dog', 'eel'], ap50=1.0, ap=1.0)


def write_coco_json(path, gt_by_image):
    images = [dict(id=img_id, height=IMAGE_SIZE[0], width=IMAGE_SIZE[1], file_name=f'{img_id}.png')
              for img_id in gt_by_image]
    annotations = []
    for img_id, objects in gt_by_image.items():
        for name, (x1, y1, x2, y2) in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=NAME_TO_ID[name], bbox=[x1, y1, x2 - x1, y2 - y1],
                                    area=(x2 - x1) * (y2 - y1), iscrowd=0))
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=CATEGORIES)))
    return str(path)


def data_samples(gt_by_image, pred_by_image, with_instances=False):
    """mmdet-style data samples; labels index the classes in annotation-file order."""
    samples = []
    for img_id in gt_by_image:
        preds = pred_by_image.get(img_id, [])
        sample = dict(
            img_id=img_id, ori_shape=IMAGE_SIZE,
            pred_instances=dict(
                bboxes=torch.tensor([box for _, box, _ in preds], dtype=torch.float32
                                    ).reshape(-1, 4),
                scores=torch.tensor([score for _, _, score in preds]),
                labels=torch.tensor([CLASSES.index(name) for name, _, _ in preds],
                                    dtype=torch.long)))
        if with_instances:
            sample['instances'] = [dict(bbox=box, bbox_label=CLASSES.index(name), ignore_flag=0)
                                   for name, box in gt_by_image[img_id]]
        samples.append(sample)
    return samples


def run_metric(metric, gt_by_image, pred_by_image, with_instances=False, batch_size=2):
    metric.dataset_meta = dict(classes=CLASSES)
    samples = data_samples(gt_by_image, pred_by_image, with_instances)
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


# An independent COCO AP: greedy matching by score per image and category, 101-point
# interpolated precision, mean over the categories that have ground truth.
def box_iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def category_ap(gt_by_image, pred_by_image, name, iou_thr):
    num_gt = sum(n == name for objects in gt_by_image.values() for n, _ in objects)
    if num_gt == 0:
        return None
    scored_hits = []
    for img_id, objects in gt_by_image.items():
        gts = [box for n, box in objects if n == name]
        dets = sorted([(s, box) for n, box, s in pred_by_image.get(img_id, []) if n == name],
                      key=lambda d: -d[0])[:100]
        matched = set()
        for score, box in dets:
            ious = [(box_iou(box, gt), j) for j, gt in enumerate(gts) if j not in matched]
            best_iou, best = max(ious, default=(0.0, None))
            hit = best is not None and best_iou >= iou_thr
            if hit:
                matched.add(best)
            scored_hits.append((score, hit))
    scored_hits.sort(key=lambda d: -d[0])
    hits = np.array([hit for _, hit in scored_hits], dtype=float)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= r
    points = []
    for r in np.linspace(0, 1, 101):
        reached = np.flatnonzero(recall >= r)
        points.append(precision[reached[0]] if reached.size else 0.0)
    return float(np.mean(points))


def reference_ap(gt_by_image, pred_by_image, names, iou_thrs):
    aps = [category_ap(gt_by_image, pred_by_image, name, thr)
           for name in names for thr in iou_thrs]
    aps = [ap for ap in aps if ap is not None]
    return float(np.mean(aps)) if aps else -1.0


def pycocotools_ap(ann_file, pred_by_image, names):
    """(AP, AP50) from pycocotools itself with params.catIds restricted to ``names``."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann_file)
        detections = [dict(image_id=img_id, category_id=NAME_TO_ID[name], score=score,
                           bbox=[x1, y1, x2 - x1, y2 - y1])
                      for img_id, preds in pred_by_image.items()
                      for name, (x1, y1, x2, y2), score in preds]
        coco_eval = COCOeval(coco, coco.loadRes(detections), 'bbox')
        coco_eval.params.catIds = [NAME_TO_ID[name] for name in names]
        coco_eval.params.imgIds = sorted(coco.getImgIds())
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats[0], coco_eval.stats[1]


def random_set(seed, num_images=5):
    """Random boxes; novel classes get accurate detections, base classes noisy ones."""
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for img_id in range(100, 100 + num_images):
        gt[img_id], pred[img_id] = [], []
        for name in CLASSES[:5]:  # 'fig' never appears
            for _ in range(rng.integers(0, 3)):
                x1, y1 = rng.uniform(0, 60, size=2)
                w, h = rng.uniform(10, 40, size=2)
                box = [x1, y1, x1 + w, y1 + h]
                gt[img_id].append((name, box))
                noise = 2.0 if name in ('dog', 'eel') else 9.0
                if rng.random() < 0.8:
                    px1, py1, px2, py2 = box + rng.normal(0, noise, 4)
                    # a valid box (COCOeval ignores boxes of negative area)
                    pred[img_id].append((name, [px1, py1, max(px2, px1 + 1), max(py2, py1 + 1)],
                                         float(rng.random())))
            for _ in range(rng.integers(0, 2)):  # false positives
                x1, y1 = rng.uniform(0, 70, size=2)
                pred[img_id].append((name, [x1, y1, x1 + 25, y1 + 25], float(rng.random())))
    return gt, pred


@pytest.mark.parametrize('novel, base', [(PERFECT, POOR), (POOR, PERFECT)],
                         ids=['novel_perfect', 'base_perfect'])
def test_hand_made_groups_match_hand_computation(tmp_path, novel, base):
    ann_file = write_coco_json(tmp_path / 'gt.json', HAND_GT)
    metric = OpenVocabCocoMetric(ann_file=ann_file, base_classes=base['classes'],
                          novel_classes=novel['classes'])
    result = run_metric(metric, HAND_GT, HAND_PRED)
    assert result['bbox_AP50_novel'] == pytest.approx(novel['ap50'], abs=1e-9)
    assert result['bbox_AP_novel'] == pytest.approx(novel['ap'], abs=1e-9)
    assert result['bbox_AP50_base'] == pytest.approx(base['ap50'], abs=1e-9)
    assert result['bbox_AP_base'] == pytest.approx(base['ap'], abs=1e-9)
    # all: the five classes with ground truth
    all_ap50 = (3 * POOR['ap50'] + 2 * 1.0) / 5
    assert result['bbox_AP50'] == pytest.approx(all_ap50, abs=1e-9)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_random_sets_match_reference_and_pycocotools(tmp_path, seed):
    gt, pred = random_set(seed)
    ann_file = write_coco_json(tmp_path / 'gt.json', gt)
    base, novel = ['apple', 'banana', 'cherry', 'fig'], ['dog', 'eel']
    result = run_metric(OpenVocabCocoMetric(ann_file=ann_file, base_classes=base, novel_classes=novel),
                        gt, pred)
    for suffix, names in [('', CLASSES), ('_base', base), ('_novel', novel)]:
        ap50 = reference_ap(gt, pred, names, [0.5])
        ap = reference_ap(gt, pred, names, IOU_THRS)
        coco_ap, coco_ap50 = pycocotools_ap(ann_file, pred, names)
        assert result[f'bbox_AP50{suffix}'] == pytest.approx(ap50, abs=1e-9)
        assert result[f'bbox_AP{suffix}'] == pytest.approx(ap, abs=1e-9)
        assert result[f'bbox_AP50{suffix}'] == pytest.approx(coco_ap50, abs=1e-12)
        assert result[f'bbox_AP{suffix}'] == pytest.approx(coco_ap, abs=1e-12)
    assert result['bbox_AP50_novel'] > result['bbox_AP50_base']  # the set is built that way


def test_ground_truth_from_data_samples_gives_the_same_numbers(tmp_path):
    gt, pred = random_set(seed=3)
    ann_file = write_coco_json(tmp_path / 'gt.json', gt)
    groups = dict(base_classes=['apple', 'banana', 'cherry', 'fig'],
                  novel_classes=['dog', 'eel'])
    from_file = run_metric(OpenVocabCocoMetric(ann_file=ann_file, **groups), gt, pred)
    from_samples = run_metric(OpenVocabCocoMetric(**groups), gt, pred, with_instances=True)
    assert from_samples == pytest.approx(from_file, abs=1e-12)


def test_no_predictions_and_group_without_ground_truth(tmp_path):
    ann_file = write_coco_json(tmp_path / 'gt.json', HAND_GT)
    metric = OpenVocabCocoMetric(ann_file=ann_file, base_classes=['apple', 'dog'],
                          novel_classes=['fig'])  # fig has no ground truth
    result = run_metric(metric, HAND_GT, {})
    assert result['bbox_AP50_base'] == 0.0 and result['bbox_AP'] == 0.0
    assert result['bbox_AP50_novel'] == -1.0 and result['bbox_AP_novel'] == -1.0


def test_built_from_registry_with_groups_from_dataset_meta_and_prefix(tmp_path):
    ann_file = write_coco_json(tmp_path / 'gt.json', HAND_GT)
    metric = METRICS.build(dict(type='OpenVocabCocoMetric', ann_file=ann_file))
    assert isinstance(metric, OpenVocabCocoMetric)
    metric.dataset_meta = dict(classes=CLASSES, base_classes=POOR['classes'],
                               novel_classes=PERFECT['classes'])
    metric.process({}, data_samples(HAND_GT, HAND_PRED))
    result = metric.evaluate(size=len(HAND_GT))
    assert result['ov_coco/bbox_AP50_novel'] == pytest.approx(1.0)
    assert result['ov_coco/bbox_AP50_base'] == pytest.approx(POOR['ap50'])
    assert set(result) == {f'ov_coco/bbox_{k}' for k in
                           ['AP', 'AP50', 'AP_base', 'AP50_base', 'AP_novel', 'AP50_novel']}


@pytest.mark.parametrize('groups, message', [
    (dict(base_classes=['apple', 'bananna'], novel_classes=['dog']),
     r"'bananna' \(did you mean 'banana'\?\)"),
    (dict(base_classes=['apple'], novel_classes=['zebra']), r"novel_classes .*'zebra'"),
    (dict(base_classes=['apple', 'dog'], novel_classes=['dog']), r"overlap: \['dog'\]"),
    (dict(base_classes=[], novel_classes=['dog']), 'base_classes is empty'),
    (dict(base_classes='apple', novel_classes=['dog']), 'must be a list'),
    (dict(base_classes=['apple']), 'needs the novel class names'),
])
def test_bad_class_groups_are_named(tmp_path, groups, message):
    ann_file = write_coco_json(tmp_path / 'gt.json', HAND_GT)
    with pytest.raises((ValueError, TypeError), match=message):
        metric = OpenVocabCocoMetric(ann_file=ann_file, **groups)
        metric.dataset_meta = dict(classes=CLASSES)


def test_on_shapes_dataset_through_mmdet_pipeline(shapes_root):
    """ShapesDataset (base/novel split from its metainfo) -> PackDetInputs samples -> metric:
    ground-truth boxes as predictions score 1; dropping the novel ones zeroes novel AP only."""
    from mmengine.registry import init_default_scope
    init_default_scope('vlkd')
    ann_file = str(shapes_root / 'annotations' / 'instances_val.json')
    dataset = vlkd.registry.DATASETS.build(dict(
        type='ShapesDataset', data_root=str(shapes_root), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'), test_mode=True,
        pipeline=[dict(type='mmdet.LoadImageFromFile'),
                  dict(type='mmdet.LoadAnnotations', with_bbox=True),
                  dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'ori_shape'))]))
    novel_labels = [dataset.metainfo['classes'].index(c)
                    for c in dataset.metainfo['novel_classes']]

    def evaluate(keep_novel):
        metric = METRICS.build(dict(type='OpenVocabCocoMetric', ann_file=ann_file))
        metric.dataset_meta = dataset.metainfo
        for index in range(len(dataset)):
            sample = dataset[index]['data_samples']
            gt = sample.gt_instances
            keep = torch.ones(len(gt), dtype=torch.bool) if keep_novel else \
                ~torch.isin(gt.labels, torch.tensor(novel_labels))
            metric.process({}, [dict(img_id=sample.img_id, ori_shape=sample.ori_shape,
                                     pred_instances=dict(bboxes=gt.bboxes.tensor[keep],
                                                         labels=gt.labels[keep],
                                                         scores=torch.ones(int(keep.sum()))))])
        return metric.evaluate(size=len(dataset))

    perfect = evaluate(keep_novel=True)
    assert perfect['ov_coco/bbox_AP_base'] == pytest.approx(1.0)
    assert perfect['ov_coco/bbox_AP_novel'] == pytest.approx(1.0)
    no_novel = evaluate(keep_novel=False)
    assert no_novel['ov_coco/bbox_AP_base'] == pytest.approx(1.0)
    assert no_novel['ov_coco/bbox_AP_novel'] == 0.0
