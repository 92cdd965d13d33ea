"""Masked image modelling on patches (SimMIM, MAE, FLAVA) and masked multimodal modelling.

Masked image modelling: some patch embeddings are replaced by a mask embedding
(:func:`.mvm.mask_visual_features`), the image (or image + text) encoder runs, and a
linear head on the outputs at masked patches regresses what was hidden, either

- the patch's pixels (``patch_size``: target ``p * p * C`` values per patch, see
  :func:`patchify`), or
- a target feature per patch (``feature_dim``: e.g. a teacher's patch features),

optionally normalised per patch (MAE's normalised pixels). The loss is the mean absolute
(``l1``, SimMIM) or squared (``l2``, MAE) error over the masked patches and target values.

Masked multimodal modelling (FLAVA's MMM) masks text tokens and image patches of the same
pair jointly, encodes both with the fusion encoder, and sums an MLM loss on the text and a
MIM loss on the image: :class:`MaskedMultimodalModelingLoss` composes the two objectives.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .mlm import MaskedLanguageModelingLoss, mask_tokens
from .mvm import mask_visual_features


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) images -> (B, N, p * p * C) patches in row-major patch order (as a ViT
    numbers its patch tokens), each patch flattened as (row, column, channel)."""
    if images.dim() != 4:
        raise ValueError(f'images must be (B, C, H, W), got {tuple(images.shape)}')
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f'image size {height}x{width} is not a multiple of the patch size '
                         f'{patch_size}')
    rows, cols = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    patches = patches.permute(0, 2, 4, 3, 5, 1)  # B, rows, cols, p, p, C
    return patches.reshape(batch, rows * cols, patch_size * patch_size * channels)


@MODELS.register_module()
class MaskedImageModelingLoss(nn.Module):
    """Regression of masked patches' pixels or features from the encoder outputs.

    Args:
        hidden_dim: width H of the encoder outputs at patch positions.
        patch_size: regress pixels of ``patch_size`` x ``patch_size`` patches; or
        feature_dim: regress given per-patch features of this size (exactly one of the two).
        in_channels: image channels (pixel targets).
        loss_type: ``'l1'`` (SimMIM) or ``'l2'`` (MAE).
        normalize_target: standardise each patch's target by its own mean and variance.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, patch_size: Optional[int] = None,
                 feature_dim: Optional[int] = None, in_channels: int = 3,
                 loss_type: str = 'l1', normalize_target: bool = False,
                 loss_weight: float = 1.0):
        super().__init__()
        if (patch_size is None) == (feature_dim is None):
            raise ValueError('give exactly one of patch_size (pixel targets) and feature_dim '
                             f'(feature targets), got {patch_size} and {feature_dim}')
        if loss_type not in ('l1', 'l2'):
            raise ValueError(f"loss_type must be 'l1' or 'l2', got {loss_type!r}")
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.target_dim = feature_dim or patch_size * patch_size * in_channels
        self.loss_type = loss_type
        self.normalize_target = normalize_target
        self.loss_weight = loss_weight
        self.head = nn.Linear(hidden_dim, self.target_dim)

    def targets(self, target: Tensor) -> Tensor:
        """(B, N, target_dim) per-patch targets from images (B, C, H, W) (pixel targets) or
        features (B, N, feature_dim), normalised if asked."""
        if self.patch_size is not None:
            target = patchify(target, self.patch_size)
        if target.dim() != 3 or target.shape[-1] != self.target_dim:
            raise ValueError(f'targets must be (B, N, {self.target_dim}) per patch, got '
                             f'{tuple(target.shape)}')
        if self.normalize_target:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, unbiased=False, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def forward(self, hidden_states: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Loss (scalar) from the outputs ``hidden_states`` (B, N, H) at the N patches,
        ``target`` (images (B, C, H, W) or features (B, N, F)) and the bool patch ``mask``
        (B, N); 0 when nothing is masked."""
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != self.hidden_dim:
            raise ValueError(f'hidden_states must be (B, N, {self.hidden_dim}), got '
                             f'{tuple(hidden_states.shape)}')
        if mask.shape != hidden_states.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(f'mask must be bool (B, N) = {tuple(hidden_states.shape[:2])}, got '
                             f'{mask.dtype} {tuple(mask.shape)}')
        target = self.targets(target.detach())
        if target.shape[:2] != mask.shape:
            raise ValueError(f'the target has {tuple(target.shape[:2])} (B, N) patches, the '
                             f'hidden states {tuple(mask.shape)}')
        if not mask.any():
            return hidden_states.sum() * 0.0
        prediction = self.head(hidden_states[mask])
        error = F.l1_loss if self.loss_type == 'l1' else F.mse_loss
        return self.loss_weight * error(prediction, target[mask])


@MODELS.register_module()
class MaskedMultimodalModelingLoss(nn.Module):
    """MLM on the text and MIM on the image of jointly masked image-text pairs.

    Args:
        mlm: arguments of the text objective, :class:`.mlm.MaskedLanguageModelingLoss`.
        mim: arguments of the image objective, :class:`MaskedImageModelingLoss`.
        text_mask_prob: fraction of maskable text tokens picked (BERT rule, see
            :func:`.mlm.mask_tokens`).
        image_mask_ratio: fraction of each image's patches masked (FLAVA: 0.4).
    """

    def __init__(self, mlm: dict, mim: dict, text_mask_prob: float = 0.15,
                 image_mask_ratio: float = 0.4):
        super().__init__()
        self.mlm = MaskedLanguageModelingLoss(**mlm)
        self.mim = MaskedImageModelingLoss(**mim)
        self.text_mask_prob = text_mask_prob
        self.image_mask_ratio = image_mask_ratio

    def mask_inputs(self, input_ids: Tensor, patch_embeddings: Tensor, mask_token_id: int,
                    special_token_ids: Sequence[int] = (),
                    text_mask: Optional[Tensor] = None,
                    patch_mask_embedding: Optional[Tensor] = None,
                    generator: Optional[torch.Generator] = None
                    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Mask both modalities of a batch of pairs.

        Args:
            input_ids: (B, L) token ids; ``text_mask`` (B, L) 1 on real tokens.
            patch_embeddings: (B, N, D) patch embeddings before the image encoder.
            mask_token_id, special_token_ids: the tokenizer's [MASK] and special ids.
            patch_mask_embedding: (D,) learnable mask embedding (default zeros).

        Returns:
            ``(masked_ids, text_labels, masked_patches, image_mask)``: inputs of the fusion
            model and the targets of :meth:`forward`.
        """
        masked_ids, text_labels = mask_tokens(
            input_ids, mask_token_id, self.mlm.vocab_size, special_token_ids, text_mask,
            mask_prob=self.text_mask_prob, generator=generator)
        masked_patches, image_mask = mask_visual_features(
            patch_embeddings, self.image_mask_ratio, mask_embedding=patch_mask_embedding,
            generator=generator)
        return masked_ids, text_labels, masked_patches, image_mask

    def forward(self, text_hidden: Tensor, text_labels: Tensor, image_hidden: Tensor,
                image_target: Tensor, image_mask: Tensor) -> Dict[str, Tensor]:
        """``{'loss_text', 'loss_image'}`` of one fused forward pass on masked pairs.

        Args:
            text_hidden: (B, L, H) fused outputs at text positions; ``text_labels`` (B, L).
            image_hidden: (B, N, H) fused outputs at patch positions.
            image_target: the unmasked images (B, C, H, W) or target features (B, N, F).
            image_mask: (B, N) bool, the masked patches.
        """
        return dict(loss_text=self.mlm(text_hidden, text_labels),
                    loss_image=self.mim(image_hidden, image_target, image_mask))
