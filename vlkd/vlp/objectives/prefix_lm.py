"""Prefix language modelling (SimVLM): bidirectional over the prefix, causal over the rest.

The input is the image tokens followed by the text tokens; the prefix is the image plus the
first ``prefix_length`` text tokens. Prefix tokens attend to every prefix token; a suffix
token attends to the prefix and to the suffix tokens up to itself; nobody attends to padding.
The text is then generated left to right: the output at text position ``t`` predicts token
``t + 1``, and the loss is the mean cross-entropy over the suffix tokens

    L = mean over (b, t) with t + 1 >= prefix_length_b, t + 1 real, of
        -log softmax(head(h_bt))[x_b,t+1].

A sample with ``prefix_length = 0`` is pure captioning (prefix = the image). The same loss
serves an encoder-decoder model: give the decoder's outputs and ``prefix_lengths = 0``.
"""
from typing import Optional

import torch
from torch import Tensor

from vlkd.registry import MODELS

from .mlm import IGNORE_INDEX, MaskedLanguageModelingLoss


def _check_text(prefix_lengths: Tensor, text_mask: Tensor) -> None:
    if text_mask.dim() != 2:
        raise ValueError(f'text_mask must be (B, L), got {tuple(text_mask.shape)}')
    if prefix_lengths.shape != text_mask.shape[:1] or prefix_lengths.is_floating_point():
        raise ValueError(f'prefix_lengths must be integers of shape ({len(text_mask)},), one '
                         f'per sample, got {prefix_lengths.dtype} {tuple(prefix_lengths.shape)}')


def prefix_lm_attention_mask(prefix_lengths: Tensor, text_mask: Tensor,
                             num_image_tokens: int = 0,
                             image_mask: Optional[Tensor] = None) -> Tensor:
    """Attention mask (B, S, S) of the sequence [image tokens; text tokens], S = N + L.

    Args:
        prefix_lengths: (B,) number of text tokens in each sample's prefix.
        text_mask: (B, L), 1 / True on real text tokens, 0 on padding.
        num_image_tokens: N, image tokens placed before the text (all in the prefix).
        image_mask: (B, N), 1 / True on real image tokens (regions may be padded).

    Returns:
        bool (B, S, S), True where query ``q`` (dim 1) may attend to key ``k`` (dim 2): the
        convention of ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention`` takes
        the negation. Every row has a key as long as the sample has one real token.
    """
    _check_text(prefix_lengths, text_mask)
    batch, length = text_mask.shape
    device = text_mask.device
    if image_mask is None:
        image_mask = torch.ones(batch, num_image_tokens, dtype=torch.bool, device=device)
    elif image_mask.shape != (batch, num_image_tokens):
        raise ValueError(f'image_mask must be (B, N) = ({batch}, {num_image_tokens}), got '
                         f'{tuple(image_mask.shape)}')
    valid = torch.cat([image_mask.bool(), text_mask.bool()], dim=1)
    position = torch.arange(num_image_tokens + length, device=device)
    in_prefix = position[None, :] < num_image_tokens + prefix_lengths[:, None]
    causal = position[None, :] <= position[:, None]  # (S_query, S_key)
    return valid[:, None, :] & (in_prefix[:, None, :] | causal[None])


def sample_prefix_lengths(text_mask: Tensor,
                          generator: Optional[torch.Generator] = None) -> Tensor:
    """(B,) prefix lengths drawn uniformly from ``0 .. n_b - 1`` (``n_b`` real tokens of
    sample ``b``), so that at least one token is left to generate (SimVLM's random split)."""
    if text_mask.dim() != 2:
        raise ValueError(f'text_mask must be (B, L), got {tuple(text_mask.shape)}')
    lengths = text_mask.bool().sum(dim=1)
    if (lengths == 0).any():
        raise ValueError(f'sample {(lengths == 0).nonzero()[0].item()} has no text token')
    draws = torch.rand(lengths.shape, generator=generator, device=text_mask.device)
    return (draws * lengths).long().clamp(max=lengths - 1)


def prefix_lm_labels(input_ids: Tensor, prefix_lengths: Tensor, text_mask: Tensor) -> Tensor:
    """(B, L) next-token labels: ``input_ids[b, t + 1]`` where token ``t + 1`` is a real
    suffix token, ``-100`` elsewhere (and at the last position)."""
    _check_text(prefix_lengths, text_mask)
    if input_ids.shape != text_mask.shape:
        raise ValueError(f'input_ids must be (B, L) = {tuple(text_mask.shape)} like text_mask, '
                         f'got {tuple(input_ids.shape)}')
    position = torch.arange(input_ids.shape[1], device=input_ids.device)
    target = text_mask.bool() & (position[None, :] >= prefix_lengths[:, None])
    labels = torch.where(target, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE_INDEX)], dim=1)


@MODELS.register_module()
class PrefixLanguageModelingLoss(MaskedLanguageModelingLoss):
    """Next-token cross-entropy on the suffix, with the token prediction head of
    :class:`MaskedLanguageModelingLoss` (same arguments; ``tie_weights`` ties its decoder
    to the word embeddings)."""

    def forward(self, hidden_states: Tensor, input_ids: Tensor, prefix_lengths: Tensor,
                text_mask: Tensor, soft_targets: Optional[Tensor] = None,
                alpha: float = 0.0) -> Tensor:
        """Mean next-token cross-entropy (scalar) over the real suffix tokens.

        Args:
            hidden_states: (B, L, H) outputs at the text positions (masked as built by
                :func:`prefix_lm_attention_mask`).
            input_ids: (B, L) the text tokens that were fed in.
            prefix_lengths: (B,) text tokens in each prefix.
            text_mask: (B, L) 1 / True on real tokens.
            soft_targets, alpha: as :class:`MaskedLanguageModelingLoss`, per target token.
        """
        labels = prefix_lm_labels(input_ids, prefix_lengths, text_mask)
        return super().forward(hidden_states, labels, soft_targets, alpha)
