"""Image-text contrastive loss (CLIP, ALIGN): symmetric InfoNCE over a batch of pairs.

For L2-normalised image features ``u_i`` and text features ``v_j`` of ``N`` pairs and a scale
``s = min(exp(t), max_scale)`` (``t`` a learnable log-temperature),

    L = 1/2 [ CE_rows(s U V^T, I) + CE_rows(s V U^T, I) ],

the mean cross-entropy of matching each image to its caption among all captions and each
caption to its image among all images. Under ``torch.distributed`` the negatives are the
pairs of every process, gathered with gradient (as open_clip's ``gather_with_grad``):

- ``local_loss=False``: every process computes the full (N_all, N_all) loss; after DDP's
  gradient averaging this is the exact gradient of the loss on the global batch.
- ``local_loss=True``: each process scores only its own rows against all columns
  ((N_local, N_all) logits, the open_clip option): the same value on average, less memory.

Every process must give the same batch size (``all_gather`` needs equal shapes).
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .distributed import gather_with_grad, world


@MODELS.register_module()
class ImageTextContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between matching image and text features.

    Args:
        max_scale: upper clamp of ``exp(log_scale)`` (CLIP: 100).
        label_smoothing: smoothing of the one-hot targets, in [0, 1).
        local_loss: under torch.distributed, score only the local rows (see module doc).
        loss_weight: factor applied to the loss.
    """

    uses_labels = False  # the pairs themselves are the positives

    def __init__(self, max_scale: float = 100.0, label_smoothing: float = 0.0,
                 local_loss: bool = False, loss_weight: float = 1.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        if max_scale <= 0:
            raise ValueError(f'max_scale must be positive, got {max_scale}')
        self.max_scale = max_scale
        self.label_smoothing = label_smoothing
        self.local_loss = local_loss
        self.loss_weight = loss_weight

    def logit_scale(self, log_scale: Tensor) -> Tensor:
        """``exp(log_scale)`` clamped at ``max_scale`` (no gradient beyond the clamp)."""
        return log_scale.exp().clamp(max=self.max_scale)

    def forward(self, image_features: Tensor, text_features: Tensor,
                log_scale: Tensor) -> Tensor:
        """Loss (scalar) of ``N`` pairs: features (N, D) of row-aligned pairs, any norm
        (normalised here); ``log_scale`` a scalar tensor, the log of the logit scale."""
        if image_features.shape != text_features.shape or image_features.dim() != 2:
            raise ValueError('image and text features must both be (N, D) with matching rows; '
                             f'got {tuple(image_features.shape)} and {tuple(text_features.shape)}')
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        scale = self.logit_scale(log_scale)
        rank = world()[0]
        all_images = gather_with_grad(image_features)
        all_texts = gather_with_grad(text_features)

        if self.local_loss:  # local rows against all columns; row i matches column offset + i
            logits_per_image = scale * image_features @ all_texts.T
            logits_per_text = scale * text_features @ all_images.T
            offset = rank * image_features.shape[0]
        else:
            logits_per_image = scale * all_images @ all_texts.T
            logits_per_text = logits_per_image.T
            offset = 0
        labels = offset + torch.arange(len(logits_per_image), device=logits_per_image.device)
        loss = (F.cross_entropy(logits_per_image, labels, label_smoothing=self.label_smoothing)
                + F.cross_entropy(logits_per_text, labels, label_smoothing=self.label_smoothing))
        # one scalar kernel, not two: a loss this small is bound by kernel launches on a GPU
        return loss * (self.loss_weight / 2)

