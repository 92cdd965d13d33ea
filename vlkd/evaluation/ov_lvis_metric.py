"""Open-vocabulary LVIS metric: AP, APr, APc, APf of boxes and masks with the ``lvis`` package.

OV-LVIS trains on the frequent and common categories and evaluates on all 1203; the headline
number is mask AP on the rare categories (APr), which the detector never saw a box of. The
evaluation is LVIS's own (:class:`lvis.LVISEval`): federated (a detection of a category
neither annotated nor verified absent in an image is not counted; an unmatched detection of a
category marked not exhaustively annotated is not a false positive), at most 300 detections
per image, frequency groups from the ``frequency`` field of the annotation file.

Compared with mmdet's ``LVISMetric`` (whose ``process`` and json conversion it reuses), the
labels are mapped to LVIS categories by class name (any class order, checked before
inference), AP is computed over the images that were processed, mask AP uses mask areas for
the size ranges (boxes are dropped from mask results, as in detectron2), values are not
rounded, and an empty prediction list gives zeros instead of an error.
"""
import contextlib
import logging
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.evaluation import LVISMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger

from vlkd.registry import METRICS
from .ov_coco_metric import _with_hints

try:
    from lvis import LVISEval, LVISResults
except ImportError:  # the metric says how to install it when it is built
    LVISEval = LVISResults = None

# LVISEval's summary keys reported for each iou type, in this order
REPORTED = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


@METRICS.register_module()
class OpenVocabLVISMetric(LVISMetric):
    """LVIS box / mask AP overall, by object size and by frequency group (r, c, f).

    Keys (``iou_type`` 'bbox' or 'segm'): ``{iou_type}_AP``, ``_AP50``, ``_AP75``, ``_APs``,
    ``_APm``, ``_APl``, ``_APr``, ``_APc``, ``_APf``; fractions in [0, 1], -1 for a group
    without ground truth among the evaluated images. The evaluator adds the prefix
    (``ov_lvis/segm_APr``).

    Args:
        ann_file (str): the LVIS v1 json with the ground truth (``lvis_v1_val.json``); its
            categories carry the frequency groups.
        metric (str | list[str]): 'bbox' and/or 'segm'.
        max_dets (int): detections kept per image, highest scores first (LVIS: 300).
        format_only, outfile_prefix, backend_args, collect_device, prefix: as in
            :class:`mmdet.evaluation.LVISMetric`.
    """
    default_prefix: Optional[str] = 'ov_lvis'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, List[str]] = 'bbox',
                 max_dets: int = 300,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if LVISEval is None:
            raise ImportError('OpenVocabLVISMetric needs the lvis package (LVIS\'s evaluation '
                              'code): pip install lvis (vlkd\'s dev extra installs it).')
        if ann_file is None:
            raise ValueError('OpenVocabLVISMetric needs ann_file=<the LVIS json with the ground '
                             "truth>, e.g. 'data/lvis/annotations/lvis_v1_val.json': LVIS "
                             'evaluation reads the category frequencies and the image-level '
                             'negative and not-exhaustive lists from it.')
        iou_types = metric if isinstance(metric, list) else [metric]
        for iou_type in iou_types:
            if iou_type not in ('bbox', 'segm'):
                raise ValueError(f"OpenVocabLVISMetric evaluates 'bbox' and 'segm', got metric="
                                 f'{iou_type!r}; use mmdet.LVISMetric for proposals.')
        if max_dets <= 0:
            raise ValueError(f'max_dets must be positive, got {max_dets}.')
        super().__init__(ann_file=ann_file, metric=iou_types, format_only=format_only,
                         outfile_prefix=outfile_prefix, backend_args=backend_args,
                         collect_device=collect_device, prefix=prefix)
        self.max_dets = max_dets
        self._check_frequencies()

    def _check_frequencies(self) -> None:
        wrong = [cat['name'] for cat in self._lvis_api.dataset['categories']
                 if cat.get('frequency') not in ('r', 'c', 'f')]
        if wrong:
            raise ValueError(f'OpenVocabLVISMetric: {len(wrong)} categories of the annotation '
                             f"file have no LVIS frequency ('r', 'c' or 'f'), e.g. {wrong[:5]}; "
                             'give an LVIS v1 file (lvis_v1_val.json).')

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        # Map the classes to categories as soon as the dataset is known, before inference.
        self._dataset_meta = dataset_meta
        if dataset_meta is not None:
            self.cat_ids = self.class_cat_ids()

    def class_cat_ids(self) -> List[int]:
        """LVIS category id of each dataset class, in label order."""
        classes = list((self.dataset_meta or {}).get('classes', ()))
        if not classes:
            raise ValueError("OpenVocabLVISMetric needs the dataset classes: its dataset_meta "
                             "has no 'classes' (the Runner sets it from the evaluated dataset).")
        by_name = {cat['name']: cat['id'] for cat in self._lvis_api.dataset['categories']}
        missing = [name for name in classes if name not in by_name]
        if missing:
            raise ValueError(f'{len(missing)} dataset classes are not categories of the LVIS '
                             f'annotation file: {_with_hints(missing, list(by_name))}.')
        return [by_name[name] for name in classes]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """LVIS AP of each iou type over the processed images."""
        logger = MMLogger.get_current_instance()
        self.cat_ids = self.class_cat_ids()
        gts, preds = zip(*results)
        img_ids = sorted({gt['img_id'] for gt in gts})
        unknown = [i for i in img_ids if i not in self._lvis_api.imgs]
        if unknown:
            raise ValueError(f'images {unknown[:10]} are not in the LVIS annotation file; the '
                             'evaluated dataset and ann_file must be the same split.')
        with tempfile.TemporaryDirectory() as tmp_dir:
            outfile_prefix = self.outfile_prefix or osp.join(tmp_dir, 'results')
            result_files = self.results2json(preds, outfile_prefix)
            if self.format_only:
                logger.info(f'results are saved in {osp.dirname(outfile_prefix)}')
                return {}
            predictions = {iou_type: load(result_files[iou_type]) for iou_type in self.metrics}

        metrics = {}
        for iou_type in self.metrics:
            lvis_eval = LVISEval(self._lvis_api, self._results(predictions[iou_type], iou_type),
                                 iou_type)
            lvis_eval.params.img_ids = img_ids
            lvis_eval.params.max_dets = self.max_dets
            with _numpy_float_alias():
                lvis_eval.evaluate()
                lvis_eval.accumulate()
            lvis_eval.summarize()
            for key in REPORTED:
                metrics[f'{iou_type}_{key}'] = float(lvis_eval.results[key])
            header = ' '.join(f'{key:>7}' for key in REPORTED)
            values = ' '.join(f'{metrics[f"{iou_type}_{key}"]:>7.4f}' for key in REPORTED)
            logger.info(f'OV-LVIS {iou_type} results on {len(img_ids)} images:\n{header}\n'
                        f'{values}')
        return metrics

    def _results(self, predictions: list, iou_type: str):
        """The LVISResults of a prediction list (LVISResults itself rejects an empty one)."""
        if iou_type == 'segm':
            # with a 'bbox' key, LVISResults would take the instance area from the box
            for prediction in predictions:
                prediction.pop('bbox', None)
        if not predictions:
            return _empty_results(self._lvis_api)
        lvis_logger = logging.getLogger('lvis')  # warns that a list (not a file) was given
        level = lvis_logger.level
        lvis_logger.setLevel(logging.ERROR)
        try:
            return LVISResults(self._lvis_api, predictions, max_dets=self.max_dets)
        finally:
            lvis_logger.setLevel(level)


def _empty_results(lvis_gt) -> 'LVISResults':
    """LVISResults without any detection (its constructor rejects an empty list)."""
    results = LVISResults.__new__(LVISResults)
    results.logger = logging.getLogger(__name__)
    results.dataset = dict(lvis_gt.dataset, annotations=[])
    results._create_index()
    return results


@contextlib.contextmanager
def _numpy_float_alias():
    """lvis 0.5.3 (its last release) calls ``np.float``, which numpy 1.24 removed; provide
    the alias (the builtin float, as it was) while LVISEval runs, then remove it again."""
    added = not hasattr(np, 'float')
    if added:
        np.float = float
    try:
        yield
    finally:
        if added:
            del np.float
