"""Transformer building blocks shared by the fusion modules: masks, attention, FFN, blocks.

Mask conventions (as in :mod:`vlkd.vlp.encoders`): a padding mask is (B, L) bool with True
on valid tokens. An attention mask is (Lq, Lk) or (B, Lq, Lk), either bool (True = the query
may attend to the key) or float (added to the attention logits; 0 = attend, a large
negative value = blocked). :func:`attention_bias` turns both into one additive bias.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def attention_bias(key_mask: Optional[Tensor] = None, attn_mask: Optional[Tensor] = None,
                   dtype=torch.float32) -> Optional[Tensor]:
    """Additive attention bias (B or 1, 1, Lq, Lk) from a key padding mask (B, Lk) and an
    attention mask (see module doc); None if neither is given. Blocked entries get the
    dtype's lowest finite value, so a query that sees no key gets uniform, finite weights."""
    if key_mask is None and attn_mask is None:
        return None
    blocked = torch.finfo(dtype).min
    if attn_mask is None:
        bias = torch.zeros(key_mask.shape[0], 1, 1, key_mask.shape[1],
                           dtype=dtype, device=key_mask.device)
    elif attn_mask.dtype == torch.bool:
        bias = torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device)
        bias = bias.masked_fill(~attn_mask, blocked)
    else:
        bias = attn_mask.to(dtype).clamp(min=blocked)
    if bias.dim() == 2:
        bias = bias[None]
    if bias.dim() == 3:
        bias = bias[:, None]
    if key_mask is not None:
        if key_mask.dtype != torch.bool:
            raise ValueError(f'Padding masks must be bool (True = valid), got {key_mask.dtype}.')
        bias = bias.masked_fill(~key_mask[:, None, None, :], blocked)
    return bias


def causal_mask(length: int, device=None) -> Tensor:
    """(L, L) bool mask letting position i attend to positions <= i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention; queries of width ``dim`` attend to keys and
    values of width ``kv_dim`` (cross-attention) or to themselves (``kv_dim=None``)."""

    def __init__(self, dim: int, num_heads: int, kv_dim: Optional[int] = None,
                 dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'width {dim} is not divisible by num_heads={num_heads}.')
        kv_dim = kv_dim or dim
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(kv_dim, dim)
        self.value = nn.Linear(kv_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: Tensor, context: Optional[Tensor] = None,
                bias: Optional[Tensor] = None) -> Tensor:
        """x (B, Lq, dim), context (B, Lk, kv_dim) (default x), bias from
        :func:`attention_bias` -> (B, Lq, dim)."""
        context = x if context is None else context
        q, k, v = self._heads(self.query(x)), self._heads(self.key(context)), \
            self._heads(self.value(context))
        if bias is not None:  # keep blocked entries finite in half precision
            bias = bias.clamp(min=torch.finfo(q.dtype).min).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear, with dropout after each."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: self-attention, optional cross-attention to a context, FFN, each
    added back to its input.

    Args:
        dim: token width; heads: attention heads; mlp_ratio: FFN hidden / dim.
        context_dim: width of the cross-attention context; None = no cross-attention.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 context_dim: Optional[int] = None, dropout: float = 0.0):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attention = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.cross_attention = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross_attention = MultiHeadAttention(dim, num_heads, kv_dim=context_dim,
                                                      dropout=dropout)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, self_bias: Optional[Tensor] = None,
                context: Optional[Tensor] = None,
                context_bias: Optional[Tensor] = None) -> Tensor:
        """x (B, L, dim); biases from :func:`attention_bias`; context (B, M, context_dim)."""
        x = x + self.dropout(self.self_attention(self.norm_self(x), bias=self_bias))
        if self.cross_attention is not None:
            if context is None:
                raise ValueError('This block cross-attends: give a context.')
            x = x + self.dropout(self.cross_attention(self.norm_cross(x), context,
                                                      bias=context_bias))
        return x + self.ffn(self.norm_ffn(x))


def run_block(block: nn.Module, *args, checkpointing: bool = False):
    """``block(*args)``; with ``checkpointing`` (and gradients on) the block's activations are
    not stored but recomputed in the backward pass (gradient checkpointing)."""
    if checkpointing and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)


def check_stream(name: str, tokens: Tensor, mask: Optional[Tensor]) -> Tensor:
    """The padding mask of a (B, L, D) token stream (all valid if None), checked."""
    if tokens.dim() != 3:
        raise ValueError(f'{name} tokens must be (B, L, D), got {tuple(tokens.shape)}.')
    if mask is None:
        return torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if mask.shape != tokens.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f'{name} mask must be bool (B, L) = {tuple(tokens.shape[:2])}, got '
                         f'{mask.dtype} {tuple(mask.shape)}.')
    if not mask.any(dim=1).all():
        raise ValueError(f'A sample has no valid {name} token.')
    return mask


def input_projection(in_dim: Optional[int], width: int) -> nn.Module:
    """Linear map to the fusion width, or identity when the widths already match."""
    return nn.Identity() if in_dim in (None, width) else nn.Linear(in_dim, width)
