"""Pseudo-label distillation (MaskCLIP+): the student learns the teacher's zero-shot
segmentation where the teacher is confident.

For teacher logits ``z`` (B, C, h, w) (scaled pixel-text similarity, see
:func:`vlkd.seg.zero_shot.zero_shot_logits`) resized bilinearly to the label size, the pseudo
label of a pixel is ``argmax_c z_c`` if ``max_c softmax(z)_c >= score_thr``, else ignored.
With ``unlabelled_only`` pixels that carry a ground-truth label (seen classes) are left to
the ground-truth loss and only the ignored ones (unseen classes, void) get pseudo labels:
MaskCLIP+'s transductive zero-shot setting. The loss is the mean cross-entropy of the
student logits over the pseudo-labelled pixels (0 if there are none).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.utils import resize
from torch import Tensor, nn

from vlkd.registry import MODELS


@MODELS.register_module()
class PseudoLabelLoss(nn.Module):
    """Cross-entropy to the teacher's confident argmax.

    Args:
        score_thr: minimum teacher probability of a pseudo label, in [0, 1).
        unlabelled_only: pseudo-label only pixels whose ground truth is ``ignore_index``.
        ignore_index: label of unlabelled pixels.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, score_thr: float = 0.0, unlabelled_only: bool = False,
                 ignore_index: int = 255, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= score_thr < 1.0:
            raise ValueError(f'score_thr must be in [0, 1), got {score_thr}')
        self.score_thr = score_thr
        self.unlabelled_only = unlabelled_only
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def pseudo_labels(self, teacher_logits: Tensor, size: Tuple[int, int],
                      gt_labels: Optional[Tensor] = None) -> Tensor:
        """(B, H, W) long: the teacher's confident classes, ``ignore_index`` elsewhere."""
        probs = resize(teacher_logits.float(), size=size, mode='bilinear',
                       align_corners=False).softmax(dim=1)
        confidence, labels = probs.max(dim=1)
        keep = confidence >= self.score_thr
        if self.unlabelled_only:
            if gt_labels is None:
                raise ValueError('unlabelled_only=True needs the ground-truth labels.')
            keep &= gt_labels == self.ignore_index
        return labels.masked_fill(~keep, self.ignore_index)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                gt_labels: Optional[Tensor] = None,
                size: Optional[Tuple[int, int]] = None) -> Tensor:
        """Loss (scalar).

        Args:
            student_logits: (B, C, h, w), resized to ``size``.
            teacher_logits: (B, C, h', w') over the same classes, no gradient.
            gt_labels: (B, H, W) ground truth (needed by ``unlabelled_only``).
            size: label size (H, W); default that of ``gt_labels``.
        """
        if student_logits.shape[:2] != teacher_logits.shape[:2]:
            raise ValueError(f'student logits {tuple(student_logits.shape)} and teacher logits '
                             f'{tuple(teacher_logits.shape)} must share batch and classes.')
        if size is None:
            if gt_labels is None:
                raise ValueError('Give the label size or the ground-truth labels.')
            size = tuple(gt_labels.shape[-2:])
        with torch.no_grad():
            labels = self.pseudo_labels(teacher_logits.detach(), size, gt_labels)
        logits = resize(student_logits, size=size, mode='bilinear', align_corners=False)
        valid = labels != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        loss = F.cross_entropy(logits, labels, ignore_index=self.ignore_index,
                               reduction='sum') / valid.sum()
        return self.loss_weight * loss
