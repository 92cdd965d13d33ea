"""Regions from a frozen mmdet two-stage detector: its top-K RPN proposals, their RoI
feature vectors and the detector's class distribution over them."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from .regions import RegionBatch
from .tower import TowerEncoder


@MODELS.register_module()
class DetectorRegionExtractor(TowerEncoder):
    """Run a frozen mmdet two-stage detector (Faster R-CNN style) to get image regions.

    For each image the ``num_regions`` highest-scoring RPN proposals (after the RPN's NMS,
    ``test_cfg.rpn``) are pooled by the RoI head; a region's feature vector is the input of
    ``roi_head.bbox_head.<feature_layer>`` (for mmdet's ``Shared2FCBBoxHead`` the
    ``fc_cls`` input: the shared-FC output the detector classifies; for vlkd's
    ``ViLDBBoxHead`` use ``'projection'``) and its class distribution the softmax of the
    box head's classification scores (background column last).

    Args:
        detector: an mmdet model config dict (``_scope_='mmdet'``); weights from
            ``checkpoint`` if given, else random (tests). Or
        checkpoint alone: a detector checkpoint / work_dir trained by ``tools/train.py``,
            rebuilt from the config stored in it or from ``config`` (a config file).
        num_regions: proposals kept per image.
        feature_layer: the box-head submodule whose input is the region feature.
    """

    def __init__(self, detector: Optional[dict] = None, checkpoint: Optional[str] = None,
                 config: Optional[str] = None, num_regions: int = 10,
                 feature_layer: str = 'fc_cls'):
        super().__init__()
        if detector is not None:
            if config is not None:
                raise ValueError('Give the detector as a model dict (detector=) or a config '
                                 'file (config=), not both.')
            self.detector = MODELS.build(ConfigDict(detector))  # mmdet reads cfg.rpn etc.
            if checkpoint is not None:
                from mmengine.runner import load_checkpoint
                load_checkpoint(self.detector, str(resolve_checkpoint(checkpoint)),
                                map_location='cpu', logger='silent')
        elif checkpoint is not None:
            from vlkd.det.proposal_embedding import load_proposal_detector
            self.detector, _ = load_proposal_detector(checkpoint, config)
        else:
            raise ValueError('DetectorRegionExtractor needs detector= (a model dict) or '
                             'checkpoint= (a trained detector).')
        for part in ('rpn_head', 'roi_head'):
            if getattr(self.detector, part, None) is None:
                raise ValueError(f'The detector ({type(self.detector).__name__}) has no '
                                 f'{part}: regions need a two-stage detector.')
        bbox_head = self.detector.roi_head.bbox_head
        try:
            layer = bbox_head.get_submodule(feature_layer)
        except AttributeError as err:
            raise ValueError(f'The box head {type(bbox_head).__name__} has no submodule '
                             f'{feature_layer!r} (feature_layer).') from err
        if getattr(bbox_head, 'loss_cls', None) is not None and \
                getattr(bbox_head.loss_cls, 'use_sigmoid', False):
            raise ValueError('The box head scores classes with sigmoids; region class '
                             'distributions need a softmax classifier.')
        self.feature_layer = feature_layer
        self.feature_dim = layer.in_features
        if num_regions < 1:
            raise ValueError(f'num_regions must be >= 1, got {num_regions}.')
        self.num_regions = num_regions
        self.freeze('detector')

    @torch.no_grad()
    def forward(self, images: Tensor) -> RegionBatch:
        """Images (B, 3, H, W) with 0-255 pixel values in the channel order of the
        detector's data pipeline (BGR for mmdet configs); the detector's own data
        preprocessor normalises them. Boxes are in these images' pixels."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must be (B, 3, H, W), got {tuple(images.shape)}.')
        height, width = images.shape[-2:]
        samples = [DetDataSample(metainfo=dict(img_shape=(height, width),
                                               ori_shape=(height, width),
                                               scale_factor=(1.0, 1.0)))
                   for _ in range(len(images))]
        data = self.detector.data_preprocessor(dict(inputs=list(images), data_samples=samples),
                                               False)
        feats = self.detector.extract_feat(data['inputs'])
        proposals = self.detector.rpn_head.predict(feats, data['data_samples'], rescale=False)
        boxes = [p.bboxes[p.scores.argsort(descending=True)[:self.num_regions]]
                 for p in proposals]

        captured = []
        layer = self.detector.roi_head.bbox_head.get_submodule(self.feature_layer)
        handle = layer.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            cls_score = self.detector.roi_head._bbox_forward(feats, bbox2roi(boxes))['cls_score']
        finally:
            handle.remove()
        features, probs = captured[0].flatten(1), F.softmax(cls_score, dim=-1)

        n = max(len(b) for b in boxes)
        batch = len(images)
        out_features = features.new_zeros(batch, n, features.shape[1])
        out_probs = probs.new_zeros(batch, n, probs.shape[1])
        out_boxes = features.new_zeros(batch, n, 4)
        mask = torch.zeros(batch, n, dtype=torch.bool, device=features.device)
        start = 0
        for i, image_boxes in enumerate(boxes):
            count = len(image_boxes)
            out_features[i, :count] = features[start:start + count]
            out_probs[i, :count] = probs[start:start + count]
            out_boxes[i, :count] = image_boxes
            mask[i, :count] = True
            start += count
        image_sizes = features.new_tensor([[height, width]]).expand(batch, 2)
        return RegionBatch(out_features, out_boxes, image_sizes, mask, out_probs)
