"""Zero-shot / open-vocabulary semantic segmentation metric: mIoU of the seen classes, of the
unseen classes, their harmonic mean (hIoU) and mIoU over all classes."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger
from mmseg.evaluation import IoUMetric

from vlkd.registry import METRICS
from .ov_coco_metric import _check_disjoint, _check_group, _with_hints


@METRICS.register_module()
class OpenVocabIoUMetric(IoUMetric):
    """mmseg's IoUMetric with the classes split into seen and unseen groups.

    Per-class IoU comes from mmseg's IoUMetric (intersection and union accumulated over the
    whole evaluated set). A group's mIoU is the mean IoU of its classes that occur in the
    ground truth or the predictions (mmseg's ``nanmean``); ``hIoU`` is the harmonic mean of
    the seen and unseen mIoU (ZS3Net / SPNet), 0 if either is 0.

    Keys (percentages, rounded to 2 decimals as mmseg does): ``aAcc``, ``mIoU``, ``mAcc``
    (all classes, mmseg's values) and, when there are unseen classes, ``mIoU_seen``,
    ``mIoU_unseen``, ``hIoU``. Open-vocabulary evaluation on a dataset none of whose
    classes was trained on (ADE20K-150, Pascal-Context-59) leaves ``unseen_classes`` empty
    and reports mIoU over all classes.

    Args:
        unseen_classes (list[str], optional): class names without training labels. Default:
            the dataset metainfo's ``unseen_classes`` (or ``novel_classes``; none if it has
            neither).
        seen_classes (list[str], optional): default: every other class of the dataset
            (background included, as in the ZS3Net protocol on Pascal VOC).
        ignore_index, collect_device, output_dir, format_only, prefix: as in mmseg's
            :class:`IoUMetric`. ``iou_metrics`` is always ``['mIoU']``.
    """

    def __init__(self,
                 unseen_classes: Optional[Sequence[str]] = None,
                 seen_classes: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 prefix: Optional[str] = None) -> None:
        super().__init__(ignore_index=ignore_index, iou_metrics=['mIoU'],
                         collect_device=collect_device, output_dir=output_dir,
                         format_only=format_only, prefix=prefix)
        if isinstance(unseen_classes, str):
            raise TypeError(f'unseen_classes must be a list of class names, got the string '
                            f'{unseen_classes!r}.')
        self.unseen_classes = None if unseen_classes is None else list(unseen_classes)
        self.seen_classes = _check_group('seen_classes', seen_classes)
        if self.seen_classes is not None and self.unseen_classes is not None:
            _check_disjoint(self.seen_classes, self.unseen_classes)

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        # check the class groups as soon as the dataset is known, before inference runs
        self._dataset_meta = dataset_meta
        if dataset_meta is not None:
            self.class_groups()

    def class_groups(self) -> Dict[str, List[int]]:
        """Class indices of the groups 'seen' and 'unseen' in the dataset's class order."""
        meta = self.dataset_meta or {}
        if 'classes' not in meta:
            raise ValueError("OpenVocabIoUMetric needs the dataset classes: its dataset_meta "
                             "has no 'classes' (the Runner sets it from the evaluated dataset).")
        classes = list(meta['classes'])
        unseen = self.unseen_classes
        if unseen is None:  # vlkd-shapes calls them novel, as in detection
            unseen = list(meta.get('unseen_classes', meta.get('novel_classes')) or [])
        seen = self.seen_classes
        if seen is None:
            seen = [name for name in classes if name not in unseen]
        for group, names in (('seen_classes', seen), ('unseen_classes', unseen)):
            unknown = [name for name in names if name not in classes]
            if unknown:
                raise ValueError(f"{group} has names that are not among the dataset's "
                                 f'{len(classes)} classes: {_with_hints(unknown, classes)}.')
        _check_disjoint(seen, unseen)
        return dict(seen=[classes.index(n) for n in seen],
                    unseen=[classes.index(n) for n in unseen])

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mmseg's metrics plus the seen / unseen mIoU and hIoU."""
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        groups = self.class_groups()
        if not groups['unseen']:
            return metrics
        intersect, union = (sum(area) for area in list(zip(*results))[:2])
        iou = (intersect / union).numpy()  # NaN where a class is in neither GT nor prediction
        means = {}
        for group, indices in groups.items():
            values = iou[indices]
            means[group] = float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')
            if np.isnan(means[group]):
                MMLogger.get_current_instance().warning(
                    f'OpenVocabIoUMetric: no {group} class occurs in the ground truth or the '
                    f'predictions; mIoU_{group} is NaN.')
        seen, unseen = means['seen'], means['unseen']
        harmonic = 2 * seen * unseen / (seen + unseen) if seen + unseen > 0 else 0.0
        metrics.update(mIoU_seen=np.round(seen * 100, 2), mIoU_unseen=np.round(unseen * 100, 2),
                       hIoU=np.round(harmonic * 100, 2))
        MMLogger.get_current_instance().info(
            f'seen mIoU {metrics["mIoU_seen"]:.2f} ({len(groups["seen"])} classes), unseen '
            f'mIoU {metrics["mIoU_unseen"]:.2f} ({len(groups["unseen"])} classes), hIoU '
            f'{metrics["hIoU"]:.2f}, mIoU {metrics["mIoU"]:.2f}')
        return metrics
