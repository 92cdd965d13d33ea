"""Metrics registered with mmengine (``vlkd.registry.METRICS``)."""
from .ov_coco_metric import OVCocoMetric

__all__ = ['OVCocoMetric']
