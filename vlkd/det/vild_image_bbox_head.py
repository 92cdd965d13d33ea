"""ViLD-image box head: regions classified by their distilled embeddings alone.

ViLD-image trains the region embeddings only by distillation of the teacher's image
embeddings of proposals (the L1 loss of :class:`ViLDRoIHead`); there is no classification
loss on base-class boxes. At test time a region's class scores are a softmax over the cosine
similarities of its embedding to the class text embeddings, divided by the temperature, over
the classes alone: the teacher's image space has no "background" direction, so there is no
background class (mmdet's background column is set to probability 0). Box regression stays
class-agnostic and is trained on base-class boxes as usual.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from vlkd.registry import MODELS
from .vild_bbox_head import ViLDBBoxHead


@MODELS.register_module()
class ViLDImageBBoxHead(ViLDBBoxHead):
    """A :class:`ViLDBBoxHead` without classification loss or background embedding.

    Same arguments as :class:`ViLDBBoxHead`; ``loss_cls`` is unused. Needs the RoI head's
    ``region_distillation`` to learn anything about classes.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.background_embedding = None  # nothing would train it

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Tensor]:
        """RoI features (N, C, h, w) -> (cls_score, bbox_pred (N, 4)).

        Training: ``cls_score`` is None, so mmdet computes the box loss only. Testing:
        ``cls_score`` (N, C+1) are the cosine logits over the C classes and ``-inf`` for
        background, whose softmax is the class softmax with background probability 0.
        """
        shared = self.region_features(x)
        bbox_pred = self.box_regression(shared)
        if self.training:
            return None, bbox_pred
        embeddings = F.normalize(self.projection(shared), dim=-1)
        logits = embeddings @ self.class_embeddings.t() / self.temperature
        background = logits.new_full((len(logits), 1), float('-inf'))
        return torch.cat([logits, background], dim=1), bbox_pred
