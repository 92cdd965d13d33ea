"""Two-stream co-attention (ViLBERT): each stream attends to the other, then to itself."""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .layers import (MultiHeadAttention, TransformerBlock, attention_bias, check_stream,
                     input_projection, run_block)
from .output import FusionOutput


class CoAttentionLayer(nn.Module):
    """Text queries attend to image keys and image queries to text keys (both read the
    streams as they enter the layer), then each stream has its own self-attention + FFN."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm_text = nn.LayerNorm(width)
        self.norm_image = nn.LayerNorm(width)
        self.text_to_image = MultiHeadAttention(width, num_heads, dropout=dropout)
        self.image_to_text = MultiHeadAttention(width, num_heads, dropout=dropout)
        self.text_block = TransformerBlock(width, num_heads, mlp_ratio, dropout=dropout)
        self.image_block = TransformerBlock(width, num_heads, mlp_ratio, dropout=dropout)

    def forward(self, text: Tensor, image: Tensor, text_bias: Tensor, image_bias: Tensor):
        text_n, image_n = self.norm_text(text), self.norm_image(image)
        text = text + self.text_to_image(text_n, image_n, bias=image_bias)
        image = image + self.image_to_text(image_n, text_n, bias=text_bias)
        return self.text_block(text, text_bias), self.image_block(image, image_bias)


@MODELS.register_module()
class CoAttentionFusion(nn.Module):
    """ViLBERT-style two-stream fusion; ``cls`` is [CLS_T; CLS_V] (B, 2D), the fused first
    tokens of both streams (the image stream's first token should be a summary token: a ViT
    [CLS] or :class:`RegionFeatureEncoder` with ``image_token=True``).

    Args:
        width: D of both streams (inputs are projected to it when their widths differ).
        depth: co-attention layers; num_heads, mlp_ratio, dropout: as usual.
        text_dim, image_dim: input widths (default D).
        grad_checkpointing: recompute each block's activations in the backward pass instead
            of storing them (less memory, more time; same outputs and gradients).
    """

    def __init__(self, width: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 text_dim: Optional[int] = None, image_dim: Optional[int] = None,
                 dropout: float = 0.0, grad_checkpointing: bool = False):
        super().__init__()
        self.width = width
        self.grad_checkpointing = grad_checkpointing
        self.text_projection = input_projection(text_dim, width)
        self.image_projection = input_projection(image_dim, width)
        self.layers = nn.ModuleList(CoAttentionLayer(width, num_heads, mlp_ratio, dropout)
                                    for _ in range(depth))
        self.norm_text = nn.LayerNorm(width)
        self.norm_image = nn.LayerNorm(width)

    def forward(self, text_tokens: Tensor, text_mask: Optional[Tensor], image_tokens: Tensor,
                image_mask: Optional[Tensor] = None) -> FusionOutput:
        """Text (B, Lt, ·) and image (B, Lv, ·) tokens with bool padding masks."""
        text_mask = check_stream('text', text_tokens, text_mask)
        image_mask = check_stream('image', image_tokens, image_mask)
        text = self.text_projection(text_tokens)
        image = self.image_projection(image_tokens)
        text_bias = attention_bias(text_mask, dtype=text.dtype)
        image_bias = attention_bias(image_mask, dtype=image.dtype)
        for layer in self.layers:
            text, image = run_block(layer, text, image, text_bias, image_bias,
                                    checkpointing=self.grad_checkpointing)
        text, image = self.norm_text(text), self.norm_image(image)
        return FusionOutput(text_tokens=text, text_mask=text_mask,
                            cls=torch.cat([text[:, 0], image[:, 0]], dim=-1),
                            image_tokens=image, image_mask=image_mask)
