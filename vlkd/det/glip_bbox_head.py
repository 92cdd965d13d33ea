"""GLIP-style box head: regions are classified by their alignment with a class prompt's words.

GLIP (Li et al., 2022) reformulates detection as phrase grounding. The class names form a
prompt, ``"circle. square. ..."`` (:mod:`.glip_prompt`), whose ``L`` tokens have features
``w_t`` from a frozen text tower. A region feature ``o_r`` is scored against every token,

    S_rt = exp(log_scale) * cos(Q o_r, P w_t) + b(w_t)

(:class:`~vlkd.vlp.objectives.RegionWordAlignmentLoss`), and trained with the sigmoid focal
grounding loss against the positive map ``M_rt = 1`` iff region ``r`` is assigned to a box of
a class whose name covers token ``t`` (background regions: all zeros). At test time the score
of class ``c`` is the mean, over the tokens of its name, of ``sigmoid(S_rt)`` (GLIP's "MEAN"
aggregation); classes are scored independently (no softmax) and the boxes go through mmdet's
per-class NMS. Box regression is class-agnostic (as in ViLD) so unseen classes' boxes are
refined too.

Training prompts list the training classes (base classes only in open-vocabulary training);
the test prompt lists the test classes, or any list given by :meth:`set_test_vocabulary`.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmdet.models.layers import multiclass_nms
from mmdet.models.losses import accuracy
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmengine.structures import InstanceData
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.objectives import RegionWordAlignmentLoss, token_logits_to_class_logits
from .glip_prompt import build_prompt_encoder
from .vild_bbox_head import ViLDBBoxHead
from .vocabulary import check_class_names


@MODELS.register_module()
class GLIPBBoxHead(ViLDBBoxHead):
    """Shared-FC box head whose classifier is region-word alignment with a class prompt.

    Reuses :class:`ViLDBBoxHead`'s shared FCs, class-agnostic box regression and train / test
    vocabularies, but not its text-embedding classifier: ``ConvFCBBoxHead`` is initialised
    directly and the prompt's token features replace the class embeddings.

    Args:
        train_classes, test_classes: class names of the training and test sets, in the
            datasets' label orders; the training and test prompts list them.
        text_encoder: config of the frozen text encoder of the prompts' tokens: a teacher
            (its open_clip CLIP text tower) or a ``BertTextEncoder`` / ``MiniLMTextEncoder``
            (:func:`~vlkd.det.glip_prompt.build_prompt_encoder`); the prompts are encoded
            once when the head is built, not saved in checkpoints.
        embed_dim: size of the joint region-token space.
        logit_scale: initial ``exp(log_scale)`` (learnt). The alignment is a cosine, bounded
            by 1, so it starts at 10 rather than GLIP's 1 (GLIP's dot products of projected
            features are unbounded).
        grounding: keyword arguments of :class:`RegionWordAlignmentLoss` besides the sizes
            (``loss_type``, ``alpha``, ``gamma``, ``prior_prob``, ``loss_weight``).
        num_shared_fcs, fc_out_channels, **kwargs: as for :class:`ViLDBBoxHead`
            (``loss_cls`` is not used: the grounding loss replaces it).
    """

    def __init__(self,
                 train_classes: Sequence[str],
                 test_classes: Sequence[str],
                 text_encoder: dict,
                 embed_dim: int = 256,
                 logit_scale: float = 10.0,
                 grounding: Optional[dict] = None,
                 num_shared_fcs: int = 2,
                 fc_out_channels: int = 1024,
                 **kwargs) -> None:
        for key in ('num_classes', 'reg_class_agnostic', 'loss_cls'):
            if key in kwargs:
                raise ValueError(f'GLIPBBoxHead sets {key} itself; remove it from the config.')
        self.train_classes = check_class_names(train_classes, 'train_classes')
        self.test_classes = check_class_names(test_classes, 'test_classes')
        ConvFCBBoxHead.__init__(
            self, num_shared_fcs=num_shared_fcs, fc_out_channels=fc_out_channels,
            num_classes=len(self.train_classes), reg_class_agnostic=True, with_cls=False,
            **kwargs)
        self.with_cls = True
        self.text_encoder = dict(text_encoder)
        encoder = build_prompt_encoder(self.text_encoder)
        train_tokens, train_map = encoder.encode(self.train_classes)
        test_tokens, test_map = encoder.encode(self.test_classes)
        self.grounding = RegionWordAlignmentLoss(self.cls_last_dim, train_tokens.shape[1],
                                                 embed_dim, **(grounding or {}))
        if logit_scale <= 0:
            raise ValueError(f'logit_scale must be positive, got {logit_scale}')
        with torch.no_grad():
            self.grounding.log_scale.fill_(math.log(logit_scale))
        # from the frozen text tower whenever the head is built: not in checkpoints
        for name, value in (('train_tokens', train_tokens), ('train_class_map', train_map),
                            ('test_tokens', test_tokens), ('test_class_map', test_map)):
            self.register_buffer(name, value, persistent=False)

    # -- vocabulary ------------------------------------------------------------------------
    @property
    def prompt(self) -> Tuple[Tensor, Tensor]:
        """Token features (L, D) and class token map (C, L) of the active prompt."""
        if self.training:
            return self.train_tokens, self.train_class_map
        return self.test_tokens, self.test_class_map

    def set_test_vocabulary(self, classes: Sequence[str],
                            embeddings: Optional[Tensor] = None) -> None:
        """Replace the test prompt by one listing ``classes`` (encoded by the text tower)."""
        if embeddings is not None:
            raise ValueError('GLIPBBoxHead scores regions against the tokens of a prompt, not '
                             'against class embeddings: give class names only.')
        classes = check_class_names(classes, 'vocabulary')
        tokens, class_map = build_prompt_encoder(self.text_encoder).encode(classes)
        self.test_classes = classes
        self.test_tokens = tokens.to(self.train_tokens)
        self.test_class_map = class_map.to(self.train_class_map.device)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """RoI features (N, C, h, w) -> (region features (N, F), bbox_pred (N, 4)).

        The region features take mmdet's ``cls_score`` place: the prompt classifies them in
        :meth:`loss` (grounding loss) and in :meth:`_predict_by_feat_single` (class scores).
        """
        shared = self.region_features(x)
        return shared, self.box_regression(shared)

    def token_logits(self, regions: Tensor) -> Tensor:
        """Region features (N, F) -> alignment logits (N, L) with the active prompt's tokens."""
        tokens, _ = self.prompt
        return self.grounding.logits(regions[None], tokens[None].to(regions))[0]

    def class_scores(self, regions: Tensor) -> Tensor:
        """Region features (N, F) -> class probabilities (N, C): per class, the mean over its
        name's tokens of the sigmoid alignment scores (GLIP)."""
        _, class_map = self.prompt
        return token_logits_to_class_logits(self.token_logits(regions).sigmoid(), class_map)

    # -- training --------------------------------------------------------------------------
    def loss(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, labels: Tensor,
             label_weights: Tensor, bbox_targets: Tensor, bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """Grounding loss of the sampled regions (``cls_score``: their features (N, F);
        ``labels`` (N,) in [0, C], C = background) and mmdet's box regression loss."""
        if reduction_override is not None:
            raise ValueError('GLIPBBoxHead normalises the grounding loss by the positive '
                             'regions; reduction_override is not supported.')
        if cls_score.dim() != 2 or cls_score.shape[1] != self.cls_last_dim:
            raise ValueError(f'cls_score must be the region features (N, {self.cls_last_dim}) '
                             f'of GLIPBBoxHead.forward, got {tuple(cls_score.shape)}')
        losses = super().loss(None, bbox_pred, rois, labels, label_weights, bbox_targets,
                              bbox_weights)
        tokens, class_map = self.prompt
        foreground = (labels >= 0) & (labels < self.num_classes)
        positive = class_map[labels.clamp(0, self.num_classes - 1)] & foreground[:, None]
        losses['loss_cls'] = self.grounding(cls_score[None], tokens[None].to(cls_score),
                                            positive[None], region_mask=(label_weights > 0)[None])
        with torch.no_grad():
            losses['acc'] = accuracy(self.class_scores(cls_score[foreground]),
                                     labels[foreground])
        return losses

    # -- inference -------------------------------------------------------------------------
    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                                img_meta: dict, rescale: bool = False,
                                rcnn_test_cfg=None) -> InstanceData:
        """mmdet's box decoding, then per-class NMS of the GLIP class scores (no softmax;
        NMS drops the appended zero background column)."""
        scores = self.class_scores(cls_score)
        scores = torch.cat([scores, scores.new_zeros(len(scores), 1)], dim=1)
        # boxes decoded (and rescaled) by mmdet, without its NMS of softmax scores
        results = super()._predict_by_feat_single(roi, scores, bbox_pred, img_meta, rescale,
                                                  None if roi.shape[0] else rcnn_test_cfg)
        if roi.shape[0] == 0:
            return results
        results.scores = scores
        if rcnn_test_cfg is None:
            return results
        dets, labels = multiclass_nms(results.bboxes, scores, rcnn_test_cfg.score_thr,
                                      rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img)
        return InstanceData(bboxes=dets[:, :-1], scores=dets[:, -1], labels=labels)
