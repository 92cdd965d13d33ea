"""Pretraining tasks: the objectives of :mod:`vlkd.vlp.objectives` wired to a backbone.

A :class:`vlkd.vlp.VLPModel` runs the tasks named in its ``objectives`` on one
:class:`PretrainingStep` per batch; each task asks the step for the forward passes it needs
(computed once per step) and returns its losses.

==================================== ==========================================================
task                                 objective (recipes)
==================================== ==========================================================
:class:`ImageTextContrastTask`       ITC, the joint space (CLIP, ALBEF w/o momentum, VLMo, FLAVA)
:class:`MomentumContrastTask`        ITC with momentum features, queues, distillation (ALBEF)
:class:`ImageTextLabelContrastTask`  image-text-label contrast (UniCL)
:class:`FDTContrastTask`             finite discrete tokens + InfoNCE (FDT)
:class:`ImageTextMatchingTask`       ITM, hard negatives from ITC (ALBEF, VLMo, ViLT, UNITER)
:class:`WordRegionAlignmentTask`     WRA by IPOT on the ITM pairs (UNITER)
:class:`MaskedLanguageTask`          MLM, with the image or text-only, distilled (ALBEF, ...)
:class:`PrefixLanguageTask`          PrefixLM with the prefix mask, or a captioning decoder
:class:`MaskedImageTask`             MIM on patches (FLAVA, VLMo image stage)
:class:`MaskedFeatureRegressionTask` MRFR on fused units (UNITER)
:class:`MaskedFeatureClassificationTask` MRC / MRC-KL on fused regions (UNITER)
:class:`MaskedMultimodalTask`        joint text + patch masking (FLAVA)
:class:`FrameOrderTask`              FOM on video frames (HERO)
:class:`RegionGroundingTask`         region-word alignment with a class prompt (GLIP)
==================================== ==========================================================
"""
from .base import MatchingPairs, PretrainingStep, PretrainingTask
from .contrastive import (FDTContrastTask, ImageTextContrastTask, ImageTextLabelContrastTask,
                          MomentumContrastTask)
from .grounding import RegionGroundingTask
from .language import MaskedLanguageTask, PrefixLanguageTask
from .masked_vision import (MaskedFeatureClassificationTask, MaskedFeatureRegressionTask,
                            MaskedImageTask, MaskedMultimodalTask)
from .matching import ImageTextMatchingTask, WordRegionAlignmentTask
from .video import FrameOrderTask

__all__ = ['PretrainingStep', 'PretrainingTask', 'MatchingPairs', 'ImageTextContrastTask',
           'MomentumContrastTask', 'ImageTextLabelContrastTask', 'FDTContrastTask',
           'ImageTextMatchingTask', 'WordRegionAlignmentTask', 'MaskedLanguageTask',
           'PrefixLanguageTask', 'MaskedImageTask', 'MaskedFeatureRegressionTask',
           'MaskedFeatureClassificationTask', 'MaskedMultimodalTask', 'FrameOrderTask',
           'RegionGroundingTask']
