"""Fusion of image and text tokens, registered in ``vlkd.registry.MODELS``.

Every module takes encoder tokens with bool padding masks (True = valid, see
:mod:`vlkd.vlp.encoders`) and returns a :class:`FusionOutput` (fused ``text_tokens``,
``text_mask``, ``cls`` for matching heads, and ``image_tokens`` / ``image_mask`` when the
visual stream is updated too); the decoder returns next-token logits.

=============================== ===========================================================
module                          architecture
=============================== ===========================================================
:class:`CrossAttentionFusion`   dual-stream, text attends to image (ALBEF)
:class:`CoAttentionFusion`      two-stream co-attention, ``cls`` = [CLS_T; CLS_V] (ViLBERT)
:class:`SingleStreamFusion`     merged attention over [text; image] with modality
                                embeddings and any extra attention mask (ViLT, UNITER)
:class:`TransformerDecoder`     causal decoder with cross-attention, greedy ``generate``
:class:`MoMETransformer`        VLMo modality experts; dual encoder and fusion encoder
:class:`VLMoStageHook`          stage-wise VLMo pretraining (:func:`apply_vlmo_stage`)
=============================== ===========================================================
"""
from .co_attention import CoAttentionFusion
from .cross_attention import CrossAttentionFusion
from .decoder import TransformerDecoder
from .layers import (FeedForward, MultiHeadAttention, TransformerBlock, attention_bias,
                     causal_mask)
from .mome import MoMETransformer
from .output import FusionOutput
from .single_stream import SingleStreamFusion
from .vlmo_stages import VLMO_STAGES, VLMoStageHook, apply_vlmo_stage

__all__ = ['FusionOutput', 'CrossAttentionFusion', 'CoAttentionFusion', 'SingleStreamFusion',
           'TransformerDecoder', 'MoMETransformer', 'VLMoStageHook', 'apply_vlmo_stage',
           'VLMO_STAGES', 'MultiHeadAttention', 'FeedForward', 'TransformerBlock',
           'attention_bias', 'causal_mask']
