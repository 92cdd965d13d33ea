"""Metrics registered with mmengine (``vlkd.registry.METRICS``)."""
from .ov_coco_metric import OpenVocabCocoMetric

__all__ = ['OpenVocabCocoMetric']
