"""Dense feature distillation: the student's pixel embeddings regress the teacher's dense
embeddings (both in the teacher's text space).

The teacher map (B, D, h', w') is resized bilinearly to the student's (B, D, h, w) and both
are L2-normalised per location; the loss is the mean over locations of

- ``'l1'``: ``sum_d |s_d - t_d|``, the L1 distance (ViLD's region distillation, per pixel);
- ``'cosine'``: ``1 - s·t``.
"""
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

MODES = ('l1', 'cosine')


@MODELS.register_module()
class DenseFeatureDistillLoss(nn.Module):
    """Per-pixel L1 or cosine distance to the teacher's dense embeddings.

    Args:
        mode: 'l1' or 'cosine'.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, mode: str = 'l1', loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        self.mode = mode
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Loss (scalar) of student (B, D, h, w) and teacher (B, D, h', w') embeddings."""
        if student.dim() != 4 or student.shape[:2] != teacher.shape[:2]:
            raise ValueError(f'student {tuple(student.shape)} and teacher '
                             f'{tuple(teacher.shape)} embeddings must be (B, D, h, w) with '
                             'the same B and D.')
        teacher = F.interpolate(teacher.detach().to(student), size=student.shape[2:],
                                mode='bilinear', align_corners=False)
        student, teacher = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
        if self.mode == 'l1':
            distance = (student - teacher).abs().sum(dim=1)
        else:
            distance = 1.0 - (student * teacher).sum(dim=1)
        return self.loss_weight * distance.mean()
