"""Open-vocabulary COCO metric: box AP and AP50 on the base, the novel and all classes."""
import contextlib
import difflib
import io
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation import CocoMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger

from vlkd.registry import METRICS

# COCOeval defaults used for the reported numbers: area range 'all', 100 detections per image.
AREA_ALL = 0
MAX_DETS = 100


@METRICS.register_module()
class OpenVocabCocoMetric(CocoMetric):
    """COCO AP and AP50 reported separately for base, novel and all classes.

    The OV-COCO protocol: a detector trained on base-class boxes is evaluated on images with
    boxes of all classes; the headline number is AP50 on the novel classes. pycocotools
    evaluates every class once; a group's AP is the mean of the COCO precision array over the
    group's classes that have ground truth, the same number COCOeval gives with
    ``params.catIds`` restricted to the group. A group with no ground truth reports -1.

    Keys (with ``iou_type`` 'bbox' or 'segm'): ``{iou_type}_AP``, ``{iou_type}_AP50`` (all
    classes), ``{iou_type}_AP_base``, ``{iou_type}_AP50_base``, ``{iou_type}_AP_novel``,
    ``{iou_type}_AP50_novel``; values are fractions in [0, 1]. The evaluator adds the prefix
    (``ov_coco/bbox_AP50_novel``). AP is computed over the images that were processed.

    Args:
        ann_file (str, optional): COCO json with the ground truth. Without it the ground
            truth comes from the data samples' ``instances``.
        base_classes (list[str], optional): base class names. Default: the dataset
            metainfo's ``base_classes``.
        novel_classes (list[str], optional): novel class names. Default: the dataset
            metainfo's ``novel_classes``.
        metric (str | list[str]): 'bbox' and/or 'segm'.
        format_only, outfile_prefix, backend_args, collect_device, prefix: as in
            :class:`mmdet.evaluation.CocoMetric`.
    """
    default_prefix: Optional[str] = 'ov_coco'
    groups = ('base', 'novel')

    def __init__(self,
                 ann_file: Optional[str] = None,
                 base_classes: Optional[Sequence[str]] = None,
                 novel_classes: Optional[Sequence[str]] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        iou_types = metric if isinstance(metric, list) else [metric]
        for iou_type in iou_types:
            if iou_type not in ('bbox', 'segm'):
                raise ValueError(f"OpenVocabCocoMetric evaluates 'bbox' and 'segm', got metric="
                                 f"{iou_type!r}; use mmdet.CocoMetric for proposals.")
        super().__init__(ann_file=ann_file, metric=iou_types, format_only=format_only,
                         outfile_prefix=outfile_prefix, backend_args=backend_args,
                         collect_device=collect_device, prefix=prefix)
        self.base_classes = _check_group('base_classes', base_classes)
        self.novel_classes = _check_group('novel_classes', novel_classes)
        if self.base_classes is not None and self.novel_classes is not None:
            _check_disjoint(self.base_classes, self.novel_classes)

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        # Check the class groups as soon as the dataset is known, before any inference runs.
        self._dataset_meta = dataset_meta
        if dataset_meta is not None:
            self.class_groups()

    def class_groups(self) -> Dict[str, List[str]]:
        """The class names of each group: 'all' (the dataset's classes), 'base', 'novel'."""
        meta = self.dataset_meta or {}
        if 'classes' not in meta:
            raise ValueError('OpenVocabCocoMetric needs the dataset classes: its dataset_meta has no '
                             "'classes' (the Runner sets it from the evaluated dataset).")
        classes = list(meta['classes'])
        groups = dict(all=classes)
        for group in self.groups:
            names = getattr(self, f'{group}_classes')
            if names is None:
                names = _check_group(f"dataset metainfo '{group}_classes'",
                                     meta.get(f'{group}_classes'))
            if names is None:
                raise ValueError(
                    f'OpenVocabCocoMetric needs the {group} class names: pass {group}_classes=[...] '
                    f"to the metric, or use a dataset whose metainfo has '{group}_classes'.")
            unknown = [name for name in names if name not in classes]
            if unknown:
                raise ValueError(f"{group}_classes has names that are not among the dataset's "
                                 f'{len(classes)} classes: {_with_hints(unknown, classes)}.')
            groups[group] = list(names)
        _check_disjoint(groups['base'], groups['novel'])
        return groups

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """COCO AP and AP50 of each class group from the processed (gt, prediction) pairs."""
        logger = MMLogger.get_current_instance()
        groups = self.class_groups()
        gts, preds = zip(*results)
        with tempfile.TemporaryDirectory() as tmp_dir:
            outfile_prefix = self.outfile_prefix or osp.join(tmp_dir, 'results')
            if self._coco_api is None:
                self._coco_api = COCO(self.gt_to_coco_json(gts, outfile_prefix))
            if self.cat_ids is None:
                self.cat_ids = self._coco_api.get_cat_ids(cat_names=groups['all'])
            result_files = self.results2json(preds, outfile_prefix)
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(outfile_prefix)}')
                return {}
            predictions = {iou_type: load(result_files[iou_type]) for iou_type in self.metrics}

        group_cat_ids = {group: self._cat_ids_of(names) for group, names in groups.items()}
        img_ids = sorted({gt['img_id'] for gt in gts})
        metrics = {}
        for iou_type in self.metrics:
            coco_eval = self._evaluate(predictions[iou_type], iou_type, img_ids)
            precision = coco_eval.eval['precision']  # (iou thr, recall thr, class, area, max dets)
            at_iou50 = np.flatnonzero(np.isclose(coco_eval.params.iouThrs, 0.5))
            max_dets = coco_eval.params.maxDets.index(MAX_DETS)
            rows = []
            for group, cat_ids in group_cat_ids.items():
                columns = [i for i, cat_id in enumerate(self.cat_ids) if cat_id in cat_ids]
                group_precision = precision[:, :, columns, AREA_ALL, max_dets]
                suffix = '' if group == 'all' else f'_{group}'
                ap, ap50 = _mean_valid(group_precision), _mean_valid(group_precision[at_iou50])
                metrics[f'{iou_type}_AP{suffix}'] = ap
                metrics[f'{iou_type}_AP50{suffix}'] = ap50
                rows.append(f'{group:>6} {len(columns):>8} {ap:>8.4f} {ap50:>8.4f}')
                if ap == -1:
                    logger.warning(f'OpenVocabCocoMetric: no {group}-class ground truth among the '
                                   f'{len(img_ids)} evaluated images; {iou_type} AP{suffix} '
                                   'is reported as -1.')
            table = '\n'.join([f'{iou_type:>6} {"classes":>8} {"AP":>8} {"AP50":>8}'] + rows)
            logger.info(f'OV-COCO {iou_type} results on {len(img_ids)} images:\n{table}')
        return metrics

    def _cat_ids_of(self, names: Sequence[str]) -> set:
        """COCO category ids of class names; every name must be a category of the ann file."""
        name_to_id = {cat['name']: cat_id for cat_id, cat in self._coco_api.cats.items()}
        missing = [name for name in names if name not in name_to_id]
        if missing:
            raise ValueError(f'classes {missing} are not categories of the COCO annotations '
                             f'({len(name_to_id)} categories); check ann_file and the dataset '
                             'classes.')
        return {name_to_id[name] for name in names}

    def _evaluate(self, predictions: list, iou_type: str, img_ids: list) -> COCOeval:
        """Run COCOeval once over all classes; returns it after ``accumulate()``."""
        if iou_type == 'segm':
            # with a 'bbox' key, loadRes would take the instance area from the box
            for prediction in predictions:
                prediction.pop('bbox')
        coco_eval = COCOeval(self._coco_api, self._load_predictions(predictions), iou_type)
        coco_eval.params.catIds = list(self.cat_ids)
        coco_eval.params.imgIds = img_ids
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress
            coco_eval.evaluate()
            coco_eval.accumulate()
        return coco_eval

    def _load_predictions(self, predictions: list) -> COCO:
        """pycocotools' loadRes, also for an empty prediction list (which it rejects)."""
        if predictions:
            with contextlib.redirect_stdout(io.StringIO()):
                return self._coco_api.loadRes(predictions)
        empty = COCO()
        empty.dataset = dict(images=list(self._coco_api.dataset['images']),
                             categories=list(self._coco_api.dataset['categories']),
                             annotations=[])
        with contextlib.redirect_stdout(io.StringIO()):
            empty.createIndex()
        return empty


def _mean_valid(precision: np.ndarray) -> float:
    """Mean over entries > -1 (classes with ground truth), as COCOeval.summarize; -1 if none."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else -1.0


def _check_group(what: str, names) -> Optional[List[str]]:
    """``names`` as a list of class names (None stays None); rejects strings and empties."""
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError(f'{what} must be a list of class names, got the string {names!r}.')
    names = list(names)
    if not names:
        raise ValueError(f'{what} is empty: give at least one class name.')
    return names


def _with_hints(unknown: Sequence[str], known: Sequence[str]) -> str:
    """'name' or 'name' (did you mean 'closest'?) for each unknown name, comma-separated."""
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        described.append(f'{name!r} (did you mean {close[0]!r}?)' if close else repr(name))
    return ', '.join(described)


def _check_disjoint(base_classes: Sequence[str], novel_classes: Sequence[str]) -> None:
    overlap = sorted(set(base_classes) & set(novel_classes))
    if overlap:
        raise ValueError(f'base_classes and novel_classes overlap: {overlap}; a class is either '
                         'seen in training (base) or not (novel).')
