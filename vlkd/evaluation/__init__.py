"""Metrics registered with mmengine (``vlkd.registry.METRICS``)."""
from .itm_accuracy import ImageTextMatchingAccuracy
from .linear_probe import LinearProbeAccuracy, fit_logistic_regression, linear_probe
from .ov_coco_metric import OpenVocabCocoMetric
from .ov_lvis_metric import OpenVocabLVISMetric
from .ov_seg_metric import OpenVocabIoUMetric
from .retrieval import ImageTextRetrievalMetric, retrieval_recall

__all__ = ['OpenVocabCocoMetric', 'OpenVocabIoUMetric', 'ImageTextRetrievalMetric',
           'retrieval_recall', 'ImageTextMatchingAccuracy', 'LinearProbeAccuracy', 'fit_logistic_regression',
           'linear_probe', 'OpenVocabLVISMetric']
