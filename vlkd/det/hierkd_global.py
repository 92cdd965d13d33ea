"""HierKD's global-level distillation: a caption-guided image embedding contrasted with the
teacher's caption embeddings.

HierKD (Ma et al., CVPR 2022, "Open-Vocabulary One-Stage Detection with Hierarchical
Visual-Language Knowledge Distillation") adds to instance-level distillation (student
region embeddings pulled to the teacher's embeddings of proposals) a global level that
needs no proposals: the detector's feature maps of a whole image are pooled into one
embedding and aligned with the teacher's text embedding of the image's caption by a
contrastive loss over the batch. Captions name objects of every class, novel ones included,
so this reaches the novel classes even where no proposal covers them.

Pooling (:class:`CaptionGuidedPooling`): the cells of the chosen feature levels of image
``i`` are tokens ``x_k`` (C channels); the teacher's caption embedding ``t_i`` (D) is the
query of a multi-head attention over them,

    g_i = W_o concat_h( sum_k softmax_k( (W_q^h t_i) . (W_k^h x_k) / sqrt(D/H) ) W_v^h x_k ),

with no residual connection, so ``g_i`` holds only image content (the caption chooses where
to look, not what the embedding says). Cells of the zero padding of a batch are masked out.

Loss (:class:`GlobalCaptionDistillation`): the symmetric InfoNCE of vlkd's
:class:`~vlkd.vlp.objectives.itc.ImageTextContrastiveLoss` between the ``g_i`` and the
``t_i`` of the batch (positives: each image with its own caption), with a learned logit
scale. At test time nothing of this runs: it only shapes the detector's features.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from vlkd.datasets.image_text import check_caption
from vlkd.registry import MODELS
from vlkd.teachers import build_teacher
from vlkd.vlp.objectives.itc import ImageTextContrastiveLoss


class CaptionEncoder:
    """The teacher's L2-normalised text embeddings (N, D) of captions.

    A plain object, not a module: the teacher is loaded on first use, moved to the device
    asked for, and never becomes part of the student's weights or checkpoints.

    Args:
        teacher: a teacher config dict or a built :class:`vlkd.teachers.Teacher`.
    """

    def __init__(self, teacher: Union[dict, object]):
        self.teacher_cfg = teacher
        self._teacher = None

    def encode(self, captions: Sequence[str], device: torch.device) -> Tensor:
        for index, caption in enumerate(captions):
            check_caption(caption, f'caption {index} of the batch')
        if self._teacher is None:
            self._teacher = build_teacher(self.teacher_cfg).freeze()
        if self._teacher.device != torch.device(device):
            self._teacher.to(device)
        return self._teacher.encode_text(list(captions)).to(device)


def flatten_feature_levels(feats: Sequence[Tensor], image_shapes: Sequence[Tuple[int, int]],
                           batch_shape: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Cells of every level as tokens, and which of them lie in the zero padding.

    Args:
        feats: L maps (B, C, h_l, w_l) of a batch padded to ``batch_shape`` (H, W) pixels.
        image_shapes: per image, the (height, width) in pixels of its content.

    Returns:
        ``tokens`` (B, T, C) with T = sum_l h_l w_l, and ``padding`` (B, T), True for a cell
        whose first row or column lies beyond the image content at that level's stride.
    """
    if len(image_shapes) != len(feats[0]):
        raise ValueError(f'{len(image_shapes)} image shapes for a batch of {len(feats[0])}.')
    height, width = batch_shape
    tokens, padding = [], []
    for level in feats:
        h, w = level.shape[-2:]
        rows = torch.arange(h, device=level.device)
        cols = torch.arange(w, device=level.device)
        masks = []
        for img_h, img_w in image_shapes:
            valid_rows = math.ceil(img_h * h / height)
            valid_cols = math.ceil(img_w * w / width)
            inside = (rows[:, None] < valid_rows) & (cols[None, :] < valid_cols)
            masks.append(~inside.flatten())
        tokens.append(level.flatten(2).transpose(1, 2))
        padding.append(torch.stack(masks))
    return torch.cat(tokens, dim=1), torch.cat(padding, dim=1)


@MODELS.register_module()
class CaptionGuidedPooling(nn.Module):
    """One image embedding (B, D) from tokens (B, T, C), with a query (B, D) per image.

    Args:
        in_channels: C, channels of the feature tokens.
        embed_dim: D, the teacher's embedding dimension (queries and output).
        num_heads: attention heads (D must be divisible by it).
    """

    def __init__(self, in_channels: int, embed_dim: int, num_heads: int = 4):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f'embed_dim {embed_dim} is not divisible by num_heads {num_heads}.')
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, kdim=in_channels,
                                               vdim=in_channels, batch_first=True)

    def forward(self, tokens: Tensor, queries: Tensor,
                padding: Optional[Tensor] = None) -> Tensor:
        """``tokens`` (B, T, C), ``queries`` (B, D), ``padding`` (B, T) bool (True: ignore)
        -> pooled embeddings (B, D), not normalised."""
        if tokens.dim() != 3 or queries.dim() != 2 or len(tokens) != len(queries):
            raise ValueError('expected tokens (B, T, C) and queries (B, D) of one batch; got '
                             f'{tuple(tokens.shape)} and {tuple(queries.shape)}')
        pooled, _ = self.attention(queries[:, None].to(tokens), tokens, tokens,
                                   key_padding_mask=padding, need_weights=False)
        return pooled[:, 0]


@MODELS.register_module()
class GlobalCaptionDistillation(nn.Module):
    """HierKD's global loss: caption-guided pooled image embeddings against the teacher's
    caption embeddings, symmetric InfoNCE over the batch (see the module docstring).

    Args:
        in_channels: channels of the detector's feature maps (FPN: ``out_channels``).
        embed_dim: the teacher's embedding dimension.
        teacher: teacher config (or Teacher) that embeds the captions.
        levels: indices of the feature levels to pool; ``None`` for all.
        num_heads: attention heads of the pooling.
        init_temperature: initial temperature of the learned logit scale (CLIP: 0.07).
        max_scale: clamp of the logit scale.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, in_channels: int, embed_dim: int, teacher: Union[dict, object],
                 levels: Optional[Sequence[int]] = None, num_heads: int = 4,
                 init_temperature: float = 0.07, max_scale: float = 100.0,
                 loss_weight: float = 1.0):
        super().__init__()
        if init_temperature <= 0:
            raise ValueError(f'init_temperature must be positive, got {init_temperature}')
        self.levels = None if levels is None else list(levels)
        self.embed_dim = embed_dim
        self.pooling = CaptionGuidedPooling(in_channels, embed_dim, num_heads)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.contrastive = ImageTextContrastiveLoss(max_scale=max_scale,
                                                    loss_weight=loss_weight)
        self.captions = CaptionEncoder(teacher)

    def select_levels(self, feats: Sequence[Tensor]) -> List[Tensor]:
        if self.levels is None:
            return list(feats)
        bad = [i for i in self.levels if not -len(feats) <= i < len(feats)]
        if bad:
            raise IndexError(f'levels {bad} do not exist: the detector gives {len(feats)} '
                             'feature levels.')
        return [feats[i] for i in self.levels]

    def forward(self, feats: Sequence[Tensor], caption_embeddings: Tensor,
                image_shapes: Sequence[Tuple[int, int]],
                batch_shape: Tuple[int, int]) -> Tensor:
        """Loss (scalar) of a batch: ``feats`` L maps (B, C, h, w) of the padded batch of
        ``batch_shape`` (H, W) px; ``caption_embeddings`` (B, D), one caption per image;
        ``image_shapes``: per image, the (height, width) of its content in px."""
        if caption_embeddings.shape != (len(feats[0]), self.embed_dim):
            raise ValueError(
                f'caption embeddings have shape {tuple(caption_embeddings.shape)}; expected '
                f'({len(feats[0])}, {self.embed_dim}): one per image, of the dimension of the '
                'teacher that embeds the class names.')
        tokens, padding = flatten_feature_levels(self.select_levels(feats), image_shapes,
                                                 batch_shape)
        pooled = self.pooling(tokens, caption_embeddings, padding)
        return self.contrastive(pooled, caption_embeddings.to(pooled), self.log_scale)
