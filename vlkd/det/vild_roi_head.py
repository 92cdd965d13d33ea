"""ViLD RoI head: ViLD-text classification plus ViLD-image region distillation.

ViLD-image: for the cached proposals of each training image (see :mod:`.region_cache`), the
student's region embeddings are pulled towards the teacher's image embeddings of the same
crops with an L1 loss, ``mean_r || student(r) - teacher(crop_r) ||_1``. The proposals cover
objects of all classes, novel ones included, which is how knowledge of unseen classes gets
into the detector without their boxes.
"""
from typing import List, Optional, Tuple

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from vlkd.registry import MODELS
from .region_cache import RegionEmbeddingCache, map_boxes_to_input


@MODELS.register_module()
class ViLDRoIHead(StandardRoIHead):
    """StandardRoIHead with an optional region-distillation loss.

    Args:
        region_distillation: ``None`` for ViLD-text, or ``dict(cache_dir=..., loss_weight=0.5,
            max_regions_per_image=None)`` for ViLD. ``bbox_head`` must provide
            ``region_embeddings`` (e.g. :class:`ViLDBBoxHead`).
        **kwargs: as for mmdet's :class:`StandardRoIHead`.
    """

    def __init__(self, *args, region_distillation: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.region_distillation = None
        if region_distillation is not None:
            unknown = set(region_distillation) - {'cache_dir', 'loss_weight',
                                                  'max_regions_per_image'}
            if unknown:
                raise KeyError(f'Unknown region_distillation keys {sorted(unknown)}; valid '
                               "keys: 'cache_dir', 'loss_weight', 'max_regions_per_image'.")
            if 'cache_dir' not in region_distillation:
                raise KeyError('region_distillation needs cache_dir.')
            self.region_distillation = dict(loss_weight=0.5, max_regions_per_image=None)
            self.region_distillation.update(region_distillation)
        self._cache: Optional[RegionEmbeddingCache] = None

    @property
    def region_cache(self) -> RegionEmbeddingCache:
        """The cache, opened on first use and checked against the head's teacher."""
        if self._cache is None:
            cache = RegionEmbeddingCache(self.region_distillation['cache_dir'])
            cache.check(teacher_fingerprint=self.bbox_head.vocabulary.fingerprint)
            self._cache = cache
        return self._cache

    def loss(self, x: Tuple[Tensor], rpn_results_list, batch_data_samples:
             List[DetDataSample]) -> dict:
        losses = super().loss(x, rpn_results_list, batch_data_samples)
        if self.region_distillation is not None:
            losses['loss_region_distill'] = self.region_distillation_loss(x, batch_data_samples)
        return losses

    def region_distillation_loss(self, x: Tuple[Tensor],
                                 batch_data_samples: List[DetDataSample]) -> Tensor:
        """L1 distance between student and teacher embeddings of the cached proposals."""
        boxes, targets = self.cached_regions(batch_data_samples, x[0])
        targets = torch.cat(targets)
        if len(targets) == 0:
            return x[0].sum() * 0
        rois = bbox2roi(boxes)
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        student = self.bbox_head.region_embeddings(feats)
        distance = (student - targets).abs().sum(dim=-1).mean()
        return self.region_distillation['loss_weight'] * distance

    def cached_regions(self, batch_data_samples: List[DetDataSample],
                       like: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Per image, the cached proposals (K_i, 4) mapped into the augmented input and the
        teacher's embeddings of them (K_i, D), the first ``max_regions_per_image`` of each,
        on the device and in the dtype of ``like``."""
        limit = self.region_distillation['max_regions_per_image']
        boxes, targets = [], []
        for sample in batch_data_samples:
            img_boxes, img_targets = self.region_cache.get(sample.metainfo['img_id'])
            if limit is not None:
                img_boxes, img_targets = img_boxes[:limit], img_targets[:limit]
            boxes.append(map_boxes_to_input(img_boxes.to(like.device), sample.metainfo))
            targets.append(img_targets.to(like))
        return boxes, targets
