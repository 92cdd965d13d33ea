"""Image-text-label contrastive loss (UniCL): every pair that shares a label is a positive.

Image-label data (the text is a prompt of the class name) and image-text data (every pair
its own label) in one space. With L2-normalised image features ``u_i``, text features
``v_j``, labels ``y`` and scale ``s``, the target of row ``i`` is uniform over the columns
with the same label,

    T_ij = [y_i = y_j] / |{k : y_k = y_i}|,
    L = 1/2 [ mean_i -sum_j T_ij log softmax_j(s u_i.v_j)
            + mean_j -sum_i T_ji log softmax_i(s v_j.u_i) ].

With all labels distinct this is the ITC loss of :mod:`.itc`, whose options (scale clamp,
label smoothing, ``local_loss``, gathering of negatives with gradient under
``torch.distributed``) it shares; labels are gathered too.
"""
import torch.nn.functional as F
from torch import Tensor

from vlkd.registry import MODELS

from .distributed import gather_no_grad, gather_with_grad
from .itc import ImageTextContrastiveLoss


@MODELS.register_module()
class ImageTextLabelContrastiveLoss(ImageTextContrastiveLoss):
    """Symmetric contrastive loss whose positives are all pairs with the same label.

    Args: as :class:`ImageTextContrastiveLoss` (``label_smoothing`` mixes the target rows
    with the uniform distribution over the columns).
    """

    uses_labels = True  # models pass the pair labels (see CLIPPretrainer.loss)

    def forward(self, image_features: Tensor, text_features: Tensor, labels: Tensor,
                log_scale: Tensor) -> Tensor:
        """Loss (scalar) of ``N`` pairs: features (N, D) with row-aligned pairs, any norm;
        ``labels`` (N,) integer label of each pair; ``log_scale`` a scalar tensor."""
        if image_features.shape != text_features.shape or image_features.dim() != 2:
            raise ValueError('image and text features must both be (N, D) with matching rows; '
                             f'got {tuple(image_features.shape)} and {tuple(text_features.shape)}')
        if labels.shape != image_features.shape[:1] or labels.is_floating_point():
            raise ValueError(f'labels must be integers of shape ({len(image_features)},), one '
                             f'per pair; got {labels.dtype} {tuple(labels.shape)}')
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        scale = self.logit_scale(log_scale)
        all_images = gather_with_grad(image_features)
        all_texts = gather_with_grad(text_features)
        all_labels = gather_no_grad(labels)
        if self.local_loss:  # local rows against the columns of every process
            logits_per_image = scale * image_features @ all_texts.T
            logits_per_text = scale * text_features @ all_images.T
            row_labels = labels
        else:
            logits_per_image = scale * all_images @ all_texts.T
            logits_per_text = logits_per_image.T
            row_labels = all_labels
        targets = (row_labels[:, None] == all_labels[None, :]).to(logits_per_image.dtype)
        targets = targets / targets.sum(dim=1, keepdim=True)
        loss = (F.cross_entropy(logits_per_image, targets, label_smoothing=self.label_smoothing)
                + F.cross_entropy(logits_per_text, targets, label_smoothing=self.label_smoothing))
        return self.loss_weight * loss / 2
