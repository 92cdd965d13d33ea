"""Distillation losses of the segmentation students."""
from .dense_feature import DenseFeatureDistillLoss
from .pseudo_label import PseudoLabelLoss

__all__ = ['DenseFeatureDistillLoss', 'PseudoLabelLoss']
