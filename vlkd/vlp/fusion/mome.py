"""VLMo's Mixture-of-Modality-Experts transformer.

Every block has one multi-head self-attention shared by all modalities and a pool of
feed-forward experts: vision (V-FFN) and language (L-FFN) in every block, vision-language
(VL-FFN) in the top ``num_vl_layers`` blocks. A token goes to the expert of its input:

- ``encode_image``: image tokens, V-FFN in every block (dual-encoder mode, ITC / retrieval);
- ``encode_text``: text tokens, L-FFN in every block;
- ``fuse``: ``[text; image]`` tokens with merged attention; in the lower blocks text tokens
  use L-FFN and image tokens V-FFN, in the top ``num_vl_layers`` blocks all tokens use
  VL-FFN (fusion-encoder mode, ITM / MLM).

The model owns its input embeddings (patches + [CLS] + positions for images, WordPiece words +
positions for text, a modality-type vector for each), so that stage-wise pretraining
(:mod:`vlkd.vlp.fusion.vlmo_stages`) can train and freeze them with the experts.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.vlp.encoders.output import EncoderOutput
from .layers import FeedForward, MultiHeadAttention, attention_bias, check_stream, run_block
from .output import FusionOutput

VISION, LANGUAGE, VISION_LANGUAGE = 'vision', 'language', 'vision_language'

# The parameter groups of a MoMETransformer (see ``MoMETransformer.parameter_group``).
PARAMETER_GROUPS = ('image_embedding', 'text_embedding', 'attention', 'vision_expert',
                    'language_expert', 'vision_language_expert', 'final_norm')


class ModalityExpert(nn.Module):
    """One FFN expert with its own pre-LayerNorm: x -> FFN(LN(x))."""

    def __init__(self, width: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.ffn = FeedForward(width, hidden_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(self.norm(x))


class MoMEBlock(nn.Module):
    """Shared self-attention, then each segment of the sequence through its expert."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float, with_vl_expert: bool,
                 dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = MultiHeadAttention(width, num_heads, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        names = (VISION, LANGUAGE) + ((VISION_LANGUAGE,) if with_vl_expert else ())
        self.experts = nn.ModuleDict(
            {name: ModalityExpert(width, int(width * mlp_ratio), dropout) for name in names})

    def forward(self, x: Tensor, bias: Optional[Tensor],
                routing: Sequence[Tuple[str, int]]) -> Tensor:
        """x (B, L, D); ``routing`` lists consecutive segments ``(expert, length)`` covering
        the L tokens, e.g. ``[('language', Lt), ('vision', Lv)]``."""
        x = x + self.dropout(self.attention(self.norm(x), bias=bias))
        segments = x.split([length for _, length in routing], dim=1)
        return torch.cat([segment + self.experts[name](segment)
                          for (name, _), segment in zip(routing, segments)], dim=1)


class ImagePatchEmbedding(nn.Module):
    """Patches -> [CLS] + patch embeddings + positions + the image modality vector."""

    def __init__(self, image_size: int, patch_size: int, width: int, mask_token: bool):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f'image_size {image_size} is not a multiple of patch_size '
                             f'{patch_size}.')
        self.image_size = image_size
        self.num_patches = (image_size // patch_size) ** 2
        self.patch = nn.Conv2d(3, width, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(width) * 0.02)
        self.position = nn.Parameter(torch.randn(self.num_patches + 1, width) * 0.02)
        self.modality = nn.Parameter(torch.zeros(width))
        self.mask_token = nn.Parameter(torch.zeros(width)) if mask_token else None

    def forward(self, images: Tensor, patch_mask: Optional[Tensor] = None) -> Tensor:
        """Images (B, 3, S, S), ``patch_mask`` (B, N) True = replace with [MASK] ->
        (B, 1 + N, D)."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f'MoMETransformer takes (B, 3, {self.image_size}, '
                             f'{self.image_size}) images, got {tuple(images.shape)}.')
        x = self.patch(images).flatten(2).transpose(1, 2)
        if patch_mask is not None:
            if self.mask_token is None:
                raise ValueError('patch_mask needs mask_token=True.')
            if patch_mask.shape != x.shape[:2]:
                raise ValueError(f'patch_mask must be (B, N) = {tuple(x.shape[:2])}, got '
                                 f'{tuple(patch_mask.shape)}.')
            x = torch.where(patch_mask[..., None], self.mask_token.to(x.dtype), x)
        x = torch.cat([self.cls_token.expand(len(x), 1, -1), x], dim=1)
        return x + self.position + self.modality


class TextEmbedding(nn.Module):
    """Token ids -> word + position embeddings + the text modality vector."""

    def __init__(self, vocab_size: int, max_length: int, width: int):
        super().__init__()
        self.word = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.word.weight, std=0.02)
        self.position = nn.Parameter(torch.randn(max_length, width) * 0.02)
        self.modality = nn.Parameter(torch.zeros(width))
        self.max_length = max_length

    def forward(self, input_ids: Tensor) -> Tensor:
        if input_ids.dim() != 2 or input_ids.shape[1] > self.max_length:
            raise ValueError(f'input_ids must be (B, L) with L <= {self.max_length}, got '
                             f'{tuple(input_ids.shape)}.')
        return self.word(input_ids) + self.position[:input_ids.shape[1]] + self.modality


@MODELS.register_module()
class MoMETransformer(nn.Module):
    """VLMo's MoME transformer (see the module doc).

    Args:
        image_size, patch_size: square input side and patch side (px).
        vocab_size: text vocabulary size (the WordPiece tokenizer's: 30522).
        max_text_length: longest token sequence.
        width, depth, num_heads, mlp_ratio, dropout: of the transformer.
        num_vl_layers: top blocks with a VL-FFN (``0 < num_vl_layers <= depth``).
        mask_token: learn a [MASK] patch embedding (masked image modelling).
        grad_checkpointing: recompute each block's activations in the backward pass instead
            of storing them (less memory, more time; same outputs and gradients).
    """

    def __init__(self, image_size: int, patch_size: int, vocab_size: int = 30522,
                 max_text_length: int = 32, width: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, num_vl_layers: int = 2,
                 dropout: float = 0.0, mask_token: bool = False,
                 grad_checkpointing: bool = False):
        super().__init__()
        if not 0 < num_vl_layers <= depth:
            raise ValueError(f'num_vl_layers must be in [1, depth={depth}], got '
                             f'{num_vl_layers}.')
        self.width, self.depth, self.num_vl_layers = width, depth, num_vl_layers
        self.image_embed = ImagePatchEmbedding(image_size, patch_size, width, mask_token)
        self.text_embed = TextEmbedding(vocab_size, max_text_length, width)
        self.blocks = nn.ModuleList(
            MoMEBlock(width, num_heads, mlp_ratio, i >= depth - num_vl_layers, dropout)
            for i in range(depth))
        self.norm = nn.LayerNorm(width)
        self.grad_checkpointing = grad_checkpointing

    def _run(self, x: Tensor, bias: Optional[Tensor],
             routings: List[Sequence[Tuple[str, int]]]) -> Tensor:
        for block, routing in zip(self.blocks, routings):
            x = run_block(block, x, bias, routing, checkpointing=self.grad_checkpointing)
        return self.norm(x)

    def encode_image(self, images: Tensor, patch_mask: Optional[Tensor] = None
                     ) -> EncoderOutput:
        """Images (B, 3, S, S) through V-FFN experts -> tokens (B, 1 + N, D), ``cls`` the
        [CLS] output."""
        x = self.image_embed(images, patch_mask)
        x = self._run(x, None, [[(VISION, x.shape[1])]] * self.depth)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return EncoderOutput(tokens=x, mask=mask, cls=x[:, 0])

    def encode_text(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
                    ) -> EncoderOutput:
        """Token ids (B, L) with padding mask (True = token) through L-FFN experts."""
        x = self.text_embed(input_ids)
        attention_mask = check_stream('text', x, attention_mask)
        x = self._run(x, attention_bias(attention_mask, dtype=x.dtype),
                      [[(LANGUAGE, x.shape[1])]] * self.depth)
        return EncoderOutput(tokens=x, mask=attention_mask, cls=x[:, 0], input_ids=input_ids)

    def fuse(self, images: Tensor, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
             patch_mask: Optional[Tensor] = None) -> FusionOutput:
        """Fusion-encoder mode over ``[text; image]``; ``cls`` the fused text [CLS]."""
        text = self.text_embed(input_ids)
        image = self.image_embed(images, patch_mask)
        if len(text) != len(image):
            raise ValueError(f'{len(text)} captions but {len(image)} images.')
        text_mask = check_stream('text', text, attention_mask)
        image_mask = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        x = torch.cat([text, image], dim=1)
        num_text, num_image = text.shape[1], image.shape[1]
        modality_routing = [(LANGUAGE, num_text), (VISION, num_image)]
        fused_routing = [(VISION_LANGUAGE, num_text + num_image)]
        routings = [modality_routing] * (self.depth - self.num_vl_layers) + \
            [fused_routing] * self.num_vl_layers
        x = self._run(x, attention_bias(torch.cat([text_mask, image_mask], 1), dtype=x.dtype),
                      routings)
        return FusionOutput(text_tokens=x[:, :num_text], text_mask=text_mask, cls=x[:, 0],
                            image_tokens=x[:, num_text:], image_mask=image_mask)

    def forward(self, images: Optional[Tensor] = None, input_ids: Optional[Tensor] = None,
                attention_mask: Optional[Tensor] = None):
        """Images only: :meth:`encode_image`; text only: :meth:`encode_text`; both: :meth:`fuse`."""
        if images is None and input_ids is None:
            raise ValueError('Give images, input_ids or both.')
        if input_ids is None:
            return self.encode_image(images)
        if images is None:
            return self.encode_text(input_ids, attention_mask)
        return self.fuse(images, input_ids, attention_mask)

    @staticmethod
    def parameter_group(name: str) -> str:
        """The group (one of ``PARAMETER_GROUPS``) of a parameter name of this module."""
        parts = name.split('.')
        if parts[0] == 'image_embed':
            return 'image_embedding'
        if parts[0] == 'text_embed':
            return 'text_embedding'
        if parts[0] == 'norm':
            return 'final_norm'
        if parts[0] == 'blocks' and parts[2] == 'experts':
            return parts[3] + '_expert'
        if parts[0] == 'blocks' and parts[2] in ('norm', 'attention'):
            return 'attention'
        raise KeyError(f'{name} is not a MoMETransformer parameter.')

    def parameter_groups(self) -> Dict[str, List[str]]:
        """Parameter names of each group."""
        groups = {group: [] for group in PARAMETER_GROUPS}
        for name, _ in self.named_parameters():
            groups[self.parameter_group(name)].append(name)
        return groups
