"""Transformer decoder for encoder-decoder models (SimVLM-style PrefixLM, captioning)."""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .layers import TransformerBlock, attention_bias, causal_mask, check_stream, run_block


@MODELS.register_module()
class TransformerDecoder(nn.Module):
    """Causal self-attention over the target tokens, cross-attention to the encoder's output
    tokens (the memory), FFN; an LM head gives next-token logits.

    ``logits[:, i]`` predict token ``i + 1`` from tokens ``0..i`` and the memory.

    Args:
        vocab_size: size of the token vocabulary (the text tokenizer's).
        width: D; depth, num_heads, mlp_ratio, dropout: of the decoder.
        memory_dim: width of the memory tokens (default D).
        max_length: longest target sequence (learned position embeddings).
        tie_weights: the LM head uses the token-embedding matrix (plus its own bias).
        bos_token_id, eos_token_id, pad_token_id: start, end and padding ids for
            :meth:`generate`; the defaults are bert-base-uncased's [CLS], [SEP], [PAD].
        grad_checkpointing: recompute each block's activations in the backward pass instead
            of storing them (less memory, more time; same outputs and gradients).
    """

    def __init__(self, vocab_size: int, width: int, depth: int, num_heads: int,
                 memory_dim: Optional[int] = None, max_length: int = 32,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, tie_weights: bool = True,
                 bos_token_id: int = 101, eos_token_id: int = 102, pad_token_id: int = 0,
                 grad_checkpointing: bool = False):
        super().__init__()
        self.grad_checkpointing = grad_checkpointing
        self.token_embedding = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_embedding = nn.Parameter(torch.randn(max_length, width) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, num_heads, mlp_ratio, context_dim=memory_dim or width,
                             dropout=dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab_size)
        if tie_weights:
            self.lm_head.weight = self.token_embedding.weight
        self.max_length = max_length
        self.bos_token_id, self.eos_token_id = bos_token_id, eos_token_id
        self.pad_token_id = pad_token_id

    def forward(self, input_ids: Tensor, memory: Tensor, memory_mask: Optional[Tensor] = None,
                attention_mask: Optional[Tensor] = None) -> Tensor:
        """Target ids (B, L) with padding mask (B, L) (True = token), memory (B, M, ·) with
        mask (B, M) -> logits (B, L, vocab_size)."""
        if input_ids.dim() != 2 or input_ids.shape[1] > self.max_length:
            raise ValueError(f'input_ids must be (B, L) with L <= max_length={self.max_length},'
                             f' got {tuple(input_ids.shape)}.')
        memory_mask = check_stream('memory', memory, memory_mask)
        if len(memory) != len(input_ids):
            raise ValueError(f'{len(input_ids)} target sequences but {len(memory)} memories.')
        length = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.position_embedding[:length]
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(f'attention_mask must be (B, L) = {tuple(input_ids.shape)}, got '
                             f'{tuple(attention_mask.shape)}.')
        self_bias = attention_bias(attention_mask, causal_mask(length, x.device), dtype=x.dtype)
        memory_bias = attention_bias(memory_mask, dtype=x.dtype)
        for block in self.blocks:
            x = run_block(block, x, self_bias, memory, memory_bias,
                          checkpointing=self.grad_checkpointing)
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def generate(self, memory: Tensor, memory_mask: Optional[Tensor] = None,
                 max_new_tokens: Optional[int] = None) -> Tensor:
        """Greedy decoding from [BOS]: (B, T) generated ids (without [BOS]); a sequence ends
        with its [EOS] and is padded with ``pad_token_id`` after it."""
        max_new_tokens = max_new_tokens or self.max_length - 1
        if max_new_tokens > self.max_length - 1:
            raise ValueError(f'At most max_length - 1 = {self.max_length - 1} new tokens.')
        ids = torch.full((len(memory), 1), self.bos_token_id, dtype=torch.long,
                         device=memory.device)
        finished = torch.zeros(len(memory), dtype=torch.bool, device=memory.device)
        for _ in range(max_new_tokens):
            next_ids = self(ids, memory, memory_mask)[:, -1].argmax(dim=-1)
            next_ids = next_ids.masked_fill(finished, self.pad_token_id)
            ids = torch.cat([ids, next_ids[:, None]], dim=1)
            finished |= next_ids == self.eos_token_id
            if finished.all():
                break
        return ids[:, 1:]
