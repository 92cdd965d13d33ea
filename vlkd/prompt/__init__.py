"""Adaptation of frozen vision-language teachers to classification from few labelled
images: prompt tuning, feature adapters and linear probing.

Every method is a :class:`PromptClassifier` (an mmengine model, registered in
``vlkd.registry.MODELS``) trained by ``tools/train.py`` with a ``configs/prompt`` config:

=========================== ======================================================== ========
method                      what is learned                                          teacher
=========================== ======================================================== ========
:class:`CoOp`               context vectors among the text tower's token embeddings  CLIP text
                            (shared or per class; class token end / middle / front)
:class:`CoCoOp`             CoOp context + a meta-network adding an image-dependent  CLIP text
                            token to it
:class:`VPT`                prompt tokens in the ViT (shallow: input; deep: every    ViT
                            layer)
:class:`VisualPaddingPrompt` a frame of learnable pixels added to the image          any
:class:`MaPLe`              deep text prompts and coupled (linearly mapped) visual   CLIP text
                            prompts                                                  + ViT
:class:`CLIPAdapter`        a residual bottleneck MLP on the image embedding         any
:class:`TipAdapter`         a cache of few-shot embeddings (training-free); with     any
                            ``finetune=True`` (Tip-Adapter-F) learned cache keys
:class:`LinearProbe`        logistic regression on the frozen image embeddings       any
=========================== ======================================================== ========

"CLIP text" and "ViT" need a teacher whose towers :mod:`.backbones` can open (open_clip
CLIP, transformers CLIPModel); the others work with any :class:`vlkd.teachers.Teacher`.
Learned text prompts are exported as class embeddings for detectors and segmenters by
``tools/embed_text.py --prompt-checkpoint`` (:mod:`.export`).
"""
from .backbones import (HFCLIPBackbone, OpenCLIPBackbone, PromptBackbone,
                        UnsupportedBackboneError, prompt_backbone)
from .classifier import ClassVocabularyError, PromptClassifier
from .clip_adapter import CLIPAdapter
from .cocoop import CoCoOp
from .coop import CoOp
from .feature_cache import FeatureCache
from .linear_probe import LinearProbe
from .maple import MaPLe
from .metrics import BaseNovelAccuracy, base_novel_accuracy, harmonic_mean
from .tip_adapter import TipAdapter
from .visual_prompting import VisualPaddingPrompt
from .vpt import VPT

__all__ = ['PromptBackbone', 'OpenCLIPBackbone', 'HFCLIPBackbone', 'UnsupportedBackboneError',
           'prompt_backbone', 'PromptClassifier', 'ClassVocabularyError', 'CoOp', 'CoCoOp',
           'VPT', 'VisualPaddingPrompt', 'MaPLe', 'CLIPAdapter', 'TipAdapter', 'LinearProbe',
           'FeatureCache', 'BaseNovelAccuracy', 'base_novel_accuracy', 'harmonic_mean']
