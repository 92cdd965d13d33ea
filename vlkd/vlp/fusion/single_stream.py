"""Single-stream fusion (ViLT on patches, UNITER on regions): one transformer over the
concatenated text and visual tokens."""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .layers import (TransformerBlock, attention_bias, check_stream, input_projection,
                     run_block)
from .output import FusionOutput

TEXT_MODALITY, IMAGE_MODALITY = 0, 1


@MODELS.register_module()
class SingleStreamFusion(nn.Module):
    """Merged self-attention over ``[text; image]`` tokens (``[image; text]`` with
    ``image_first=True``), each with a learned modality embedding added (0 = text,
    1 = image), padding masked out.

    ``attention_mask`` (L, L) or (B, L, L) over the concatenated sequence (L = Lt + Lv, in
    that order), bool (True = may attend) or additive float, is combined with the padding
    masks; PrefixLM passes its prefix-causal mask here (its
    ``prefix_lm_attention_mask`` puts the image first). ``cls`` is the fused first text token
    ([CLS]) in either order.

    Args:
        width: D; depth, num_heads, mlp_ratio, dropout: of the transformer.
        text_dim, image_dim: input widths (projected to D when different; default D).
        image_first: order of the concatenation.
        grad_checkpointing: recompute each block's activations in the backward pass instead
            of storing them (less memory, more time; same outputs and gradients).
    """

    def __init__(self, width: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 text_dim: Optional[int] = None, image_dim: Optional[int] = None,
                 dropout: float = 0.0, image_first: bool = False,
                 grad_checkpointing: bool = False):
        super().__init__()
        self.width = width
        self.grad_checkpointing = grad_checkpointing
        self.image_first = image_first
        self.text_projection = input_projection(text_dim, width)
        self.image_projection = input_projection(image_dim, width)
        self.modality_embedding = nn.Embedding(2, width)
        nn.init.normal_(self.modality_embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(width, num_heads, mlp_ratio,
                                                     dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, text_tokens: Tensor, text_mask: Optional[Tensor], image_tokens: Tensor,
                image_mask: Optional[Tensor] = None,
                attention_mask: Optional[Tensor] = None) -> FusionOutput:
        """Text (B, Lt, ·) and image (B, Lv, ·) tokens with bool padding masks."""
        text_mask = check_stream('text', text_tokens, text_mask)
        image_mask = check_stream('image', image_tokens, image_mask)
        text = self.text_projection(text_tokens) + self.modality_embedding.weight[TEXT_MODALITY]
        image = self.image_projection(image_tokens) + \
            self.modality_embedding.weight[IMAGE_MODALITY]
        parts, masks = ([image, text], [image_mask, text_mask]) if self.image_first else \
            ([text, image], [text_mask, image_mask])
        x = torch.cat(parts, dim=1)
        length = x.shape[1]
        if attention_mask is not None and tuple(attention_mask.shape[-2:]) != (length, length):
            raise ValueError(f'attention_mask must be (L, L) or (B, L, L) with L = Lt + Lv = '
                             f'{length}, got {tuple(attention_mask.shape)}.')
        bias = attention_bias(torch.cat(masks, dim=1), attention_mask, dtype=x.dtype)
        for block in self.blocks:
            x = run_block(block, x, bias, checkpointing=self.grad_checkpointing)
        x = self.norm(x)
        text, image = x.split([parts[0].shape[1], parts[1].shape[1]], dim=1)
        if self.image_first:
            text, image = image, text
        return FusionOutput(text_tokens=text, text_mask=text_mask, cls=text[:, 0],
                            image_tokens=image, image_mask=image_mask)
