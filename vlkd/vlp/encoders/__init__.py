"""Feature extraction for vision-language pretraining: image, region, video and text encoders.

Every encoder is registered in ``vlkd.registry.MODELS`` and returns an
:class:`EncoderOutput`:

=============== ============ ===========================================================
field           shape        meaning
=============== ============ ===========================================================
``tokens``      (B, L, D)    token features that fusion modules attend over; a summary
                             token ([CLS], a whole-image token), if any, is ``tokens[:, 0]``
``mask``        (B, L) bool  True = valid token, False = padding
``cls``         (B, D)       one feature per sample (summary-token output, CLIP EOT token,
                             or the mean of the valid tokens)
``embedding``   (B, E)       CLIP towers: the projected embedding (open_clip's encode_*)
``input_ids``   (B, L)       text encoders: the token ids
``features``    (B, L, F)    region / grid / frame encoders: raw input features
``boxes``       (B, L, 4)    region encoder: boxes, xyxy in input-image pixels
``class_probs`` (B, L, K)    region encoder: the detector's class distribution
=============== ============ ===========================================================

Encoders expose ``width`` (= D). Text encoders have ``tokenizer`` (``input_ids`` and a bool
``attention_mask``; empty captions are errors naming the caption), ``tokenize(texts)``,
``forward(input_ids, attention_mask)`` and ``encode(texts)``. Towers take ``frozen=True``
(no gradients, eval mode kept through ``train()``). Masked modelling hooks: ``patch_mask``
of :class:`ViTPatchEncoder` (a learned [MASK] patch embedding, ``mask_token=True``),
``masked_regions`` of :class:`RegionFeatureEncoder` (features zeroed, geometry kept), and
:meth:`FrameSequenceEncoder.encode_frames` / ``add_positions`` to reorder frames in between.

==================================== =====================================================
encoder                              input
==================================== =====================================================
:class:`ViTPatchEncoder`             images (B, 3, H, W); open_clip or timm ViT
:class:`CNNGridEncoder`              images (B, 3, S, S); torchvision / timm CNN grid
:class:`RegionFeatureEncoder`        :class:`RegionBatch` (region files) or images + a
                                     frozen mmdet detector (:class:`DetectorRegionExtractor`)
:class:`FrameSequenceEncoder`        frames (B, T, 3, H, W) with any image encoder
:class:`BertTextEncoder`             WordPiece ids (transformers BERT; MiniLM-L6 loader)
:class:`CLIPTextEncoder`             CLIP BPE ids (open_clip text tower)
==================================== =====================================================
"""
from .bert_text import BertTextEncoder
from .clip_text import CLIPTextEncoder
from .cnn_grid import CNNGridEncoder
from .detector_regions import DetectorRegionExtractor
from .frame_sequence import FrameSequenceEncoder
from .output import EncoderOutput
from .region_encoder import RegionFeatureEncoder, box_geometry
from .regions import (RegionBatch, RegionSet, collate_regions, load_region_file,
                      save_region_file)
from .tokenization import (CLIPBPETokenizer, WordPieceTokenizer, check_captions,
                           minilm_dir)
from .tower import TowerEncoder, load_weights
from .vit import ViTPatchEncoder

__all__ = ['EncoderOutput', 'TowerEncoder', 'load_weights', 'ViTPatchEncoder',
           'CNNGridEncoder', 'RegionFeatureEncoder', 'DetectorRegionExtractor', 'box_geometry',
           'RegionSet', 'RegionBatch', 'collate_regions', 'load_region_file',
           'save_region_file', 'FrameSequenceEncoder', 'BertTextEncoder', 'CLIPTextEncoder',
           'WordPieceTokenizer', 'CLIPBPETokenizer', 'check_captions', 'minilm_dir']
