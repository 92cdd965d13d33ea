"""Zero-shot classification of object crops: top-1 accuracy on all, base and novel classes.

Every crop is classified among all C classes (the generalised setting: novel crops compete
with base names too); accuracy is then reported over all crops, base-class crops and
novel-class crops, in percent.
"""
from collections import defaultdict
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from vlkd.registry import METRICS


def split_accuracy(pred_labels: Sequence[int], gt_labels: Sequence[int],
                   classes: Sequence[str], novel_classes: Sequence[str]) -> Dict[str, float]:
    """Top-1 accuracy (%) over all samples (``top1``), base-class samples (``top1_base``)
    and novel-class samples (``top1_novel``); NaN for a group without samples."""
    unknown = sorted(set(novel_classes) - set(classes))
    if unknown:
        raise ValueError(f'novel classes {unknown} are not among the classes {list(classes)}')
    pred, gt = np.asarray(pred_labels, dtype=int), np.asarray(gt_labels, dtype=int)
    if pred.shape != gt.shape:
        raise ValueError(f'{len(pred)} predictions for {len(gt)} labels')
    novel_ids = [i for i, name in enumerate(classes) if name in set(novel_classes)]
    is_novel = np.isin(gt, novel_ids)
    correct = pred == gt

    def mean(mask):
        return float(100 * correct[mask].mean()) if mask.any() else float('nan')

    return dict(top1=mean(np.ones_like(correct)), top1_base=mean(~is_novel),
                top1_novel=mean(is_novel))


@METRICS.register_module()
class ZeroShotCropAccuracy(BaseMetric):
    """Top-1 zero-shot accuracy of crop predictions (``pred_label``, ``gt_label``) over all,
    base and novel classes; class names come from the dataset's metainfo.

    Args:
        novel_classes: the names of the novel classes (the others are base).
    """

    default_prefix = 'zero_shot'

    def __init__(self, novel_classes: Sequence[str] = (), collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.novel_classes = tuple(novel_classes)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append((int(sample['pred_label']), int(sample['gt_label'])))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        classes = self.dataset_meta['classes']
        pred, gt = zip(*results)
        if max(pred) >= len(classes):
            raise ValueError(f'Predicted class {max(pred)} but the dataset has only '
                             f'{len(classes)} classes: the model classifies among other names.')
        return split_accuracy(pred, gt, classes, self.novel_classes)


@torch.no_grad()
def teacher_crop_accuracy(teacher, dataset, novel_classes: Sequence[str], templates=None,
                          scales: Sequence[float] = (1.0,)) -> Dict[str, float]:
    """Zero-shot top-1 accuracy (%) of a :class:`vlkd.teachers.Teacher` on the boxes of a
    crop dataset (items with ``img_path``, ``crop_bbox``, ``gt_label``; metainfo
    ``classes``), through ``encode_regions``: the path students use."""
    classes = dataset.metainfo['classes']
    class_embeddings = teacher.encode_class_names(classes, templates)
    by_image = defaultdict(list)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        by_image[info['img_path']].append((info['crop_bbox'], info['gt_label']))
    pred, gt = [], []
    for img_path, objects in by_image.items():
        image = mmcv.imread(img_path, channel_order='rgb')
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
        boxes = torch.tensor([box for box, _ in objects], dtype=torch.float32)
        embeddings = teacher.encode_regions(image, [boxes], scales=scales)[0]
        pred += (embeddings @ class_embeddings.T).argmax(dim=1).tolist()
        gt += [label for _, label in objects]
    return split_accuracy(pred, gt, classes, novel_classes)
