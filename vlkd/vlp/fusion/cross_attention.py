"""Dual-stream fusion by cross-attention (ALBEF): text tokens attend to image tokens."""
from typing import Optional

from torch import Tensor, nn

from vlkd.registry import MODELS
from .layers import (TransformerBlock, attention_bias, check_stream, input_projection,
                     run_block)
from .output import FusionOutput


@MODELS.register_module()
class CrossAttentionFusion(nn.Module):
    """``depth`` pre-LN layers of text self-attention, cross-attention from the text to the
    image tokens, and FFN; the image tokens are read, not updated (ALBEF's fusion layers,
    which sit on top of a text encoder's first layers).

    Args:
        width: fusion width D (text tokens are projected to it if ``text_dim`` differs).
        depth: number of layers; num_heads: attention heads; mlp_ratio: FFN hidden / D.
        text_dim: width of the incoming text tokens (default D).
        image_dim: width of the image tokens the text attends to (default D).
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
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, mlp_ratio, context_dim=image_dim or width,
                             dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, text_tokens: Tensor, text_mask: Optional[Tensor], image_tokens: Tensor,
                image_mask: Optional[Tensor] = None) -> FusionOutput:
        """Text (B, Lt, text_dim) and image (B, Lv, image_dim) tokens with bool padding masks
        -> fused text tokens (B, Lt, D); ``cls`` the fused first ([CLS]) text token."""
        text_mask = check_stream('text', text_tokens, text_mask)
        image_mask = check_stream('image', image_tokens, image_mask)
        x = self.text_projection(text_tokens)
        self_bias = attention_bias(text_mask, dtype=x.dtype)
        image_bias = attention_bias(image_mask, dtype=x.dtype)
        for block in self.blocks:
            x = run_block(block, x, self_bias, image_tokens, image_bias,
                          checkpointing=self.grad_checkpointing)
        x = self.norm(x)
        return FusionOutput(text_tokens=x, text_mask=text_mask, cls=x[:, 0])
