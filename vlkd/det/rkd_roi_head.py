"""RoI head of region-based knowledge distillation (Rasheed et al., NeurIPS 2022).

One pass of the RoI extractor over the cached class-agnostic proposals of each training
image (ViLD's region cache: boxes and the teacher's 1x + 1.5x crop embeddings) gives the
shared features of those regions, from which the head computes

- ``loss_region_distill``: ViLD's L1 loss between the distillation branch's embeddings and
  the teacher's, ``mean_r ||d_r - t_r||_1``;
- ``loss_relation_distill``: the inter-embedding relationship loss over all distilled
  regions of the batch (:func:`~.rkd_losses.inter_embedding_relation_loss`);
- ``loss_image_label``: pseudo-label supervision. For every class an image's captions name,
  the proposal whose teacher embedding is most similar to the class text embedding is the
  pseudo box (:mod:`.rkd_pseudo_labels`); the classification branch's logits for it, over
  the image-label vocabulary plus background, are trained to that class by cross-entropy
  (:func:`~.rkd_losses.image_label_loss`).

The supervised losses on base-class boxes are mmdet's (:class:`StandardRoIHead`).
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from vlkd.registry import MODELS
from .rkd_losses import image_label_loss, inter_embedding_relation_loss
from .rkd_pseudo_labels import CaptionClassLabels, select_pseudo_boxes
from .vild_roi_head import ViLDRoIHead


@MODELS.register_module()
class RKDRoIHead(ViLDRoIHead):
    """:class:`ViLDRoIHead` with the IRM loss and pseudo-label image-level supervision.

    Args:
        region_distillation: as for :class:`ViLDRoIHead` (``cache_dir``, ``loss_weight`` of
            the L1 term, ``max_regions_per_image``); required.
        relation_loss_weight: weight of the IRM loss (0 turns it off).
        image_labels: ``dict(caption_file=..., loss_weight=...)``: the COCO captions file of
            the training images (their weak labels) and the weight of the pseudo-label
            loss; ``None`` turns it off. ``bbox_head`` must be an :class:`RKDBBoxHead`,
            whose ``image_label_classes`` are the classes the labels can name.
        **kwargs: as for :class:`ViLDRoIHead`.
    """

    def __init__(self, *args, relation_loss_weight: float = 1.0,
                 image_labels: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.region_distillation is None:
            raise ValueError('RKDRoIHead needs region_distillation=dict(cache_dir=...): the '
                             'cached proposals are what it distils and pseudo-labels.')
        if relation_loss_weight < 0:
            raise ValueError(f'relation_loss_weight must be >= 0, got {relation_loss_weight}')
        self.relation_loss_weight = relation_loss_weight
        self.image_labels = None
        if image_labels is not None:
            unknown = set(image_labels) - {'caption_file', 'loss_weight'}
            if unknown or 'caption_file' not in image_labels:
                raise KeyError(f'image_labels takes caption_file (required) and loss_weight; '
                               f'got keys {sorted(image_labels)}.')
            if not hasattr(self.bbox_head, 'image_label_classes'):
                raise TypeError('image_labels needs a bbox_head with image_label_classes '
                                f'(vlkd.RKDBBoxHead), not {type(self.bbox_head).__name__}.')
            self.image_labels = {**dict(loss_weight=1.0), **image_labels}
        self._caption_labels: Optional[CaptionClassLabels] = None

    @property
    def caption_labels(self) -> CaptionClassLabels:
        """The weak labels of the training images, read on first use."""
        if self._caption_labels is None:
            self._caption_labels = CaptionClassLabels(self.image_labels['caption_file'],
                                                      self.bbox_head.image_label_classes)
        return self._caption_labels

    def loss(self, x: Tuple[Tensor], rpn_results_list,
             batch_data_samples: List[DetDataSample]) -> dict:
        # the supervised RPN-proposal losses; the region terms are computed below instead
        # of by ViLDRoIHead.loss, sharing one RoI pass
        losses = StandardRoIHead.loss(self, x, rpn_results_list, batch_data_samples)
        losses.update(self.region_losses(x, batch_data_samples))
        return losses

    def region_losses(self, x: Tuple[Tensor],
                      batch_data_samples: List[DetDataSample]) -> dict:
        """The L1, IRM and pseudo-label losses on the cached proposals of the batch."""
        boxes, targets = self.cached_regions(batch_data_samples, x[0])
        teacher = torch.cat(targets)
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs],
                                        bbox2roi(boxes))
        shared = self.bbox_head.region_features(feats)
        student = F.normalize(self.bbox_head.projection(shared), dim=-1)
        zero = x[0].sum() * 0
        losses = dict(loss_region_distill=zero, loss_relation_distill=zero)
        if len(teacher):
            losses['loss_region_distill'] = self.region_distillation['loss_weight'] * (
                student - teacher).abs().sum(dim=-1).mean()
            losses['loss_relation_distill'] = self.relation_loss_weight * \
                inter_embedding_relation_loss(student, teacher)
        if self.image_labels is not None:
            losses['loss_image_label'] = self.image_labels['loss_weight'] * \
                self.pseudo_label_loss(shared, targets, batch_data_samples)
        return losses

    def pseudo_label_loss(self, shared: Tensor, targets: List[Tensor],
                          batch_data_samples: List[DetDataSample]) -> Tensor:
        """Cross-entropy of the pseudo boxes' classification to their caption classes.

        ``shared`` (sum K_i, F): shared features of the cached regions, image after image;
        ``targets``: per image the teacher's embeddings (K_i, D) of its regions."""
        class_embeddings = self.bbox_head.image_label_embeddings
        rows, labels, image_index, start = [], [], [], 0
        for index, (sample, teacher) in enumerate(zip(batch_data_samples, targets)):
            img_labels = self.caption_labels[sample.metainfo['img_id']]
            chosen = select_pseudo_boxes(teacher, class_embeddings, img_labels)
            if len(chosen):
                rows.append(chosen + start)
                labels.append(torch.as_tensor(img_labels, device=shared.device))
                image_index.append(torch.full_like(chosen, index))
            start += len(teacher)
        if not rows:
            return shared.sum() * 0
        rows = torch.cat(rows)
        cls_score = self.bbox_head.classify(shared[rows], class_embeddings)
        return image_label_loss(cls_score, torch.cat(labels), torch.cat(image_index))
