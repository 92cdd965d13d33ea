"""OpenVocabLVISMetric against LVIS AP written from its definition (federated matching,
frequency groups), against the lvis package's LVISEval run directly, and through the
OVLVISV1Dataset pipeline."""
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from lvis import LVIS, LVISEval, LVISResults

import vlkd  # noqa: F401  (installs the compat layer before mmdet)
from vlkd.evaluation import OpenVocabLVISMetric
from vlkd.registry import METRICS

# Category ids are not contiguous, so a label -> category id mix-up shows.
CATEGORIES = [dict(id=3, name='alpha', frequency='r'), dict(id=8, name='beta', frequency='r'),
              dict(id=9, name='gamma', frequency='c'), dict(id=14, name='delta', frequency='f'),
              dict(id=20, name='epsilon', frequency='f')]
CLASSES = [c['name'] for c in CATEGORIES]
NAME_TO_ID = {c['name']: c['id'] for c in CATEGORIES}
FREQUENCY = {c['name']: c['frequency'] for c in CATEGORIES}
IMAGE_SIZE = (100, 100)  # (height, width)
IOU_THRS = np.linspace(0.5, 0.95, 10)

# Hand-made set (boxes xyxy). Image-level lists: neg = verified absent, not exhaustive.
HAND_GT = {1: [('alpha', [10, 10, 40, 40]), ('gamma', [50, 50, 90, 90])],
           2: [('alpha', [20, 20, 60, 60]), ('delta', [5, 5, 35, 35])]}
HAND_NEG = {1: ['delta'], 2: ['beta']}
HAND_NOT_EXHAUSTIVE = {1: ['gamma'], 2: []}
HAND_PRED = {  # (name, box, score)
    1: [('alpha', [10, 10, 40, 40], 0.90),
        ('gamma', [0, 60, 30, 95], 0.95),   # unmatched, gamma not exhaustive here: not an FP
        ('gamma', [50, 50, 90, 90], 0.60),
        ('delta', [60, 0, 90, 30], 0.99),   # delta verified absent here: an FP
        ('beta', [0, 0, 20, 20], 0.80)],    # beta neither annotated nor verified: not counted
    2: [('alpha', [65, 65, 95, 95], 0.95),  # FP ranked above alpha's second hit
        ('alpha', [20, 20, 60, 45], 0.50),  # IoU 0.625: a hit at IoU 0.50, 0.55, 0.60 only
        ('delta', [5, 5, 35, 35], 0.70),
        ('beta', [70, 0, 95, 20], 0.30)],   # beta verified absent: an FP, but beta has no GT
}
# Expected by hand. alpha at IoU <= 0.6: FP, TP, TP -> precision 2/3 at every recall;
# above: FP, TP, FP -> precision 1/2 up to recall 1/2 (51 of 101 points), then 0.
ALPHA_AP = (3 * 2 / 3 + 7 * 51 * 0.5 / 101) / 10
HAND = dict(APr=ALPHA_AP, APc=1.0, APf=0.5, AP=(ALPHA_AP + 1.0 + 0.5) / 3,
            AP50=(2 / 3 + 1.0 + 0.5) / 3)


def write_lvis_json(path, gt_by_image, neg, not_exhaustive, categories=CATEGORIES):
    images = [dict(id=img_id, height=IMAGE_SIZE[0], width=IMAGE_SIZE[1],
                   coco_url=f'http://images.cocodataset.org/val2017/{img_id:012d}.jpg',
                   neg_category_ids=[NAME_TO_ID[n] for n in neg.get(img_id, [])],
                   not_exhaustive_category_ids=[NAME_TO_ID[n]
                                                for n in not_exhaustive.get(img_id, [])])
              for img_id in gt_by_image]
    annotations = []
    for img_id, objects in gt_by_image.items():
        for name, (x1, y1, x2, y2) in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=NAME_TO_ID[name],
                                    bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                                    segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    path.write_text(json.dumps(dict(images=images, annotations=annotations,
                                    categories=categories)))
    return str(path)


def box_mask(box, shape='ellipse'):
    """Mask of the ellipse inscribed in ``box`` (its area is about 0.79 of the box's, so box
    and mask areas fall in different size ranges), or of the box itself."""
    x1, y1, x2, y2 = box
    ys, xs = np.mgrid[:IMAGE_SIZE[0], :IMAGE_SIZE[1]] + 0.5
    if shape == 'box':
        return (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1


def data_samples(gt_by_image, pred_by_image, with_masks=False, mask_shape='ellipse'):
    samples = []
    for img_id in gt_by_image:
        preds = pred_by_image.get(img_id, [])
        instances = dict(
            bboxes=torch.tensor([box for _, box, _ in preds], dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([score for _, _, score in preds], dtype=torch.float32),
            labels=torch.tensor([CLASSES.index(name) for name, _, _ in preds], dtype=torch.long))
        if with_masks:
            instances['masks'] = torch.from_numpy(
                np.stack([box_mask(box, mask_shape) for _, box, _ in preds]) if preds
                else np.zeros((0,) + IMAGE_SIZE, dtype=bool))
        samples.append(dict(img_id=img_id, ori_shape=IMAGE_SIZE, pred_instances=instances))
    return samples


def run_metric(metric, gt_by_image, pred_by_image, with_masks=False, mask_shape='ellipse',
               batch_size=2):
    metric.dataset_meta = dict(classes=CLASSES)
    samples = data_samples(gt_by_image, pred_by_image, with_masks, mask_shape)
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


# -- LVIS AP from its definition -----------------------------------------------------------
def box_iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def category_ap(gt, pred, neg, not_exhaustive, name, iou_thr):
    """101-point interpolated AP of ``name``, LVIS's federated way; None without GT."""
    num_gt = sum(n == name for objects in gt.values() for n, _ in objects)
    if num_gt == 0:
        return None
    scored = []
    for img_id, objects in gt.items():
        gts = [box for n, box in objects if n == name]
        if not gts and name not in neg.get(img_id, []):
            continue  # neither annotated nor verified absent: detections are not judged
        top = sorted(pred.get(img_id, []), key=lambda d: -d[2])[:300]
        dets = sorted([(s, box) for n, box, s in top if n == name], key=lambda d: -d[0])
        matched = set()
        for score, box in dets:
            candidates = [(box_iou(box, g), j) for j, g in enumerate(gts) if j not in matched]
            best_iou, best = max(candidates, default=(0.0, None))
            if best is not None and best_iou >= iou_thr:
                matched.add(best)
                scored.append((score, True))
            elif name not in not_exhaustive.get(img_id, []):
                scored.append((score, False))
    scored.sort(key=lambda d: -d[0])
    hits = np.array([hit for _, hit in scored], dtype=float)
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = tp / num_gt
    precision = np.maximum.accumulate((tp / np.maximum(tp + fp, np.spacing(1)))[::-1])[::-1]
    points = []
    for r in np.linspace(0, 1, 101):
        reached = np.flatnonzero(recall >= r)
        points.append(precision[reached[0]] if reached.size else 0.0)
    return float(np.mean(points))


def reference(gt, pred, neg, not_exhaustive, names, iou_thrs=IOU_THRS):
    aps = [category_ap(gt, pred, neg, not_exhaustive, name, thr)
           for name in names for thr in iou_thrs]
    aps = [ap for ap in aps if ap is not None]
    return float(np.mean(aps)) if aps else -1.0


def reference_groups(gt, pred, neg, not_exhaustive):
    group = {f: [n for n in CLASSES if FREQUENCY[n] == f] for f in 'rcf'}
    return dict(AP=reference(gt, pred, neg, not_exhaustive, CLASSES),
                AP50=reference(gt, pred, neg, not_exhaustive, CLASSES, [0.5]),
                APr=reference(gt, pred, neg, not_exhaustive, group['r']),
                APc=reference(gt, pred, neg, not_exhaustive, group['c']),
                APf=reference(gt, pred, neg, not_exhaustive, group['f']))


def lvis_eval_directly(ann_file, pred_by_image, iou_type, monkeypatch):
    """LVISEval of the lvis package itself on the same detections (np.float for numpy 2)."""
    monkeypatch.setattr(np, 'float', float, raising=False)
    gt = LVIS(ann_file)
    detections = []
    for img_id, preds in pred_by_image.items():
        for name, (x1, y1, x2, y2), score in preds:
            detection = dict(image_id=img_id, category_id=NAME_TO_ID[name], score=score)
            if iou_type == 'bbox':
                detection['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            else:
                rle = mask_utils.encode(np.asfortranarray(box_mask([x1, y1, x2, y2])))
                rle['counts'] = rle['counts'].decode()
                detection['segmentation'] = rle
            detections.append(detection)
    lvis_eval = LVISEval(gt, LVISResults(gt, detections), iou_type)
    lvis_eval.params.img_ids = sorted(pred_by_image)
    lvis_eval.run()
    monkeypatch.undo()
    return lvis_eval.results


def random_set(seed, num_images=6):
    """Random boxes and image-level lists; detections of every class, a few of each frequency
    group accurate, others noisy, plus false positives."""
    rng = np.random.default_rng(seed)
    gt, pred, neg, not_exhaustive = {}, {}, {}, {}
    for img_id in range(100, 100 + num_images):
        gt[img_id], pred[img_id] = [], []
        present = [n for n in CLASSES[:4] if rng.random() < 0.6]  # epsilon never has GT
        for name in present:
            for _ in range(rng.integers(1, 3)):
                x1, y1 = rng.uniform(0, 60, size=2)
                w, h = rng.uniform(10, 40, size=2)
                box = [float(x1), float(y1), float(x1 + w), float(y1 + h)]
                gt[img_id].append((name, box))
                if rng.random() < 0.8:
                    px1, py1, px2, py2 = np.asarray(box) + rng.normal(0, 4.0, 4)
                    pred[img_id].append((name, [float(px1), float(py1), float(max(px2, px1 + 1)),
                                                float(max(py2, py1 + 1))], float(rng.random())))
        absent = [n for n in CLASSES if n not in present]
        neg[img_id] = [n for n in absent if rng.random() < 0.5]
        not_exhaustive[img_id] = [n for n in present if rng.random() < 0.3]
        for name in CLASSES:  # false positives, judged or not depending on the lists
            if rng.random() < 0.5:
                x1, y1 = rng.uniform(0, 70, size=2)
                pred[img_id].append((name, [float(x1), float(y1), float(x1 + 25),
                                            float(y1 + 25)], float(rng.random())))
    return gt, pred, neg, not_exhaustive


# -- tests ---------------------------------------------------------------------------------
def test_hand_made_set_matches_hand_computation_and_reference(tmp_path):
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    result = run_metric(OpenVocabLVISMetric(ann_file=ann_file), HAND_GT, HAND_PRED)
    reference_values = reference_groups(HAND_GT, HAND_PRED, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    for key, value in HAND.items():
        assert result[f'bbox_{key}'] == pytest.approx(value, abs=1e-9), key
        assert reference_values[key] == pytest.approx(value, abs=1e-12), key


def test_hand_made_set_matches_lvis_eval(tmp_path, monkeypatch):
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    result = run_metric(OpenVocabLVISMetric(ann_file=ann_file), HAND_GT, HAND_PRED)
    direct = lvis_eval_directly(ann_file, HAND_PRED, 'bbox', monkeypatch)
    for key in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'):
        assert result[f'bbox_{key}'] == pytest.approx(float(direct[key]), abs=1e-12), key


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_random_sets_match_lvis_eval_and_reference(tmp_path, seed, monkeypatch):
    gt, pred, neg, not_exhaustive = random_set(seed)
    ann_file = write_lvis_json(tmp_path / 'gt.json', gt, neg, not_exhaustive)
    result = run_metric(OpenVocabLVISMetric(ann_file=ann_file, metric=['bbox', 'segm']), gt,
                        pred, with_masks=True)
    for key, value in reference_groups(gt, pred, neg, not_exhaustive).items():
        assert result[f'bbox_{key}'] == pytest.approx(value, abs=1e-9), key
    for iou_type in ('bbox', 'segm'):
        direct = lvis_eval_directly(ann_file, pred, iou_type, monkeypatch)
        for key in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'):
            assert result[f'{iou_type}_{key}'] == pytest.approx(float(direct[key]), abs=1e-12)
    assert result['bbox_APr'] > 0 and result['segm_AP'] > 0


def test_perfect_masks_and_no_predictions(tmp_path):
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    perfect = {img_id: [(name, box, 0.9) for name, box in objects]
               for img_id, objects in HAND_GT.items()}
    result = run_metric(OpenVocabLVISMetric(ann_file=ann_file, metric=['bbox', 'segm']),
                        HAND_GT, perfect, with_masks=True, mask_shape='box')
    for key in ('AP', 'APr', 'APc', 'APf'):
        assert result[f'segm_{key}'] == pytest.approx(1.0)
        assert result[f'bbox_{key}'] == pytest.approx(1.0)
    empty = run_metric(OpenVocabLVISMetric(ann_file=ann_file, metric=['bbox', 'segm']),
                       HAND_GT, {}, with_masks=True)
    for iou_type in ('bbox', 'segm'):
        assert empty[f'{iou_type}_AP'] == 0.0 and empty[f'{iou_type}_APr'] == 0.0
        assert empty[f'{iou_type}_APl'] == -1.0  # no large object in the ground truth


def test_labels_map_to_categories_by_name(tmp_path):
    """Dataset classes in another order than the file's categories give the same numbers."""
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    metric = OpenVocabLVISMetric(ann_file=ann_file)
    reordered = CLASSES[::-1]
    metric.dataset_meta = dict(classes=reordered)
    for sample in data_samples(HAND_GT, HAND_PRED):
        labels = sample['pred_instances']['labels']
        sample['pred_instances']['labels'] = torch.tensor(
            [reordered.index(CLASSES[i]) for i in labels.tolist()], dtype=torch.long)
        metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    assert result['bbox_APr'] == pytest.approx(HAND['APr'])
    assert result['bbox_AP'] == pytest.approx(HAND['AP'])


def test_registry_prefix_and_bad_arguments(tmp_path):
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    metric = METRICS.build(dict(type='OpenVocabLVISMetric', ann_file=ann_file))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, data_samples(HAND_GT, HAND_PRED))
    result = metric.evaluate(size=len(HAND_GT))
    assert result['ov_lvis/bbox_APr'] == pytest.approx(HAND['APr'])
    assert set(result) == {f'ov_lvis/bbox_{k}' for k in
                           ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')}

    with pytest.raises(ValueError, match='needs ann_file'):
        OpenVocabLVISMetric()
    with pytest.raises(ValueError, match="evaluates 'bbox' and 'segm'"):
        OpenVocabLVISMetric(ann_file=ann_file, metric='proposal')
    with pytest.raises(ValueError, match=r"'gama' \(did you mean 'gamma'\?\)"):
        OpenVocabLVISMetric(ann_file=ann_file).dataset_meta = dict(classes=['alpha', 'gama'])
    no_frequency = [dict(id=c['id'], name=c['name']) for c in CATEGORIES]
    coco_like = write_lvis_json(tmp_path / 'coco.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE,
                                categories=no_frequency)
    with pytest.raises(ValueError, match='no LVIS frequency'):
        OpenVocabLVISMetric(ann_file=coco_like)


def test_missing_lvis_package_is_named(tmp_path, monkeypatch):
    import vlkd.evaluation.ov_lvis_metric as module
    monkeypatch.setattr(module, 'LVISEval', None)
    ann_file = write_lvis_json(tmp_path / 'gt.json', HAND_GT, HAND_NEG, HAND_NOT_EXHAUSTIVE)
    with pytest.raises(ImportError, match='pip install lvis'):
        OpenVocabLVISMetric(ann_file=ann_file)


def test_through_the_ov_lvis_dataset(tmp_path):
    """OVLVISV1Dataset samples -> metric: ground truth as predictions scores 1 everywhere;
    dropping the rare-class predictions zeroes APr only."""
    from ov_detection_data import write_lvis_v1
    from mmengine.registry import init_default_scope
    init_default_scope('vlkd')
    root = write_lvis_v1(tmp_path / 'lvis')
    dataset = vlkd.registry.DATASETS.build(dict(
        type='OVLVISV1Dataset', data_root=str(root), ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''), test_mode=True,
        pipeline=[dict(type='mmdet.LoadImageFromFile'),
                  dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True),
                  dict(type='mmdet.PackDetInputs', meta_keys=('img_id', 'ori_shape'))]))
    rare = [dataset.metainfo['classes'].index(c) for c in dataset.metainfo['rare_classes']]

    def evaluate(keep_rare):
        metric = METRICS.build(dict(type='OpenVocabLVISMetric', metric=['bbox', 'segm'],
                                    ann_file=str(root / 'annotations/lvis_v1_val.json')))
        metric.dataset_meta = dataset.metainfo
        for index in range(len(dataset)):
            sample = dataset[index]['data_samples']
            gt = sample.gt_instances
            keep = torch.ones(len(gt), dtype=torch.bool) if keep_rare else \
                ~torch.isin(gt.labels, torch.tensor(rare))
            metric.process({}, [dict(img_id=sample.img_id, ori_shape=sample.ori_shape,
                                     pred_instances=dict(
                                         bboxes=gt.bboxes.tensor[keep], labels=gt.labels[keep],
                                         scores=torch.ones(int(keep.sum())),
                                         masks=torch.from_numpy(gt.masks.to_ndarray())[keep]))])
        return metric.evaluate(size=len(dataset))

    perfect = evaluate(keep_rare=True)
    for key in ('AP', 'APr', 'APc', 'APf'):
        assert perfect[f'ov_lvis/segm_{key}'] == pytest.approx(1.0)
        assert perfect[f'ov_lvis/bbox_{key}'] == pytest.approx(1.0)
    no_rare = evaluate(keep_rare=False)
    assert no_rare['ov_lvis/segm_APr'] == 0.0
    assert no_rare['ov_lvis/segm_APc'] == pytest.approx(1.0)
    assert no_rare['ov_lvis/segm_APf'] == pytest.approx(1.0)
