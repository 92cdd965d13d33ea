"""Image-text matching (ITM / VLM) and word-region alignment (WRA) on the fused matching pairs.

Both read :meth:`PretrainingStep.matching`: per batch of N pairs, the N positives and 2N
negatives (each image with another caption, each caption with another image; hard
negatives drawn from the joint-space similarities as in ALBEF, or uniformly), fused once.
"""
from typing import Dict

from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.objectives import ImageTextMatchingLoss, WordRegionAlignmentLoss
from vlkd.vlp.views import TextView, VisualView
from .base import PretrainingStep, PretrainingTask, special_token_mask


def _check_fusion(backbone, what: str) -> None:
    if backbone.fusion_width is None:
        raise ValueError(f'{what} reads fused image-text tokens: give the backbone a fusion '
                         'module.')


@MODELS.register_module()
class ImageTextMatchingTask(PretrainingTask):
    """Binary matched / not matched classification of the fused ``cls`` (single-stream
    [CLS], ALBEF's fused text [CLS], or ViLBERT's [CLS_T; CLS_V]).

    Args:
        hard_negatives: True or 'softmax': draw negatives from the softmax of the
            joint-space similarities (ALBEF; needs a contrastive task); 'hardest': take the
            most similar non-positive; False or 'uniform': uniformly among non-positives.
            Under torch.distributed negatives come from every process's batch.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, hard_negatives: bool = True, weight: float = 1.0,
                 stages=None):
        super().__init__(weight, stages)
        _check_fusion(backbone, 'Image-text matching')
        self.hard_negatives = hard_negatives
        self.loss = ImageTextMatchingLoss(backbone.fusion_cls_dim)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        pairs = step.matching(self.hard_negatives)
        out = self.loss(pairs.fused.cls, pairs.is_match)
        return dict(loss=out['loss'], accuracy=out['accuracy'])

    def score_pairs(self, backbone, image: VisualView, text: TextView) -> Tensor:
        """(M,) matching logits of M image-text pairs."""
        return self.loss.logits(backbone.fuse(image, text).cls)


@MODELS.register_module()
class WordRegionAlignmentTask(PretrainingTask):
    """UNITER's WRA: optimal-transport distance between the fused word tokens and the fused
    visual units (regions, patches), minimised on matching pairs and maximised on the
    others. Special tokens ([CLS], [SEP]) and summary visual tokens take no part.

    Args:
        hard_negatives: as :class:`ImageTextMatchingTask` (the two share the pairs).
        beta, num_iterations: IPOT settings of
            :class:`~vlkd.vlp.objectives.WordRegionAlignmentLoss`.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, hard_negatives: bool = False, beta: float = 0.5,
                 num_iterations: int = 50, weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        _check_fusion(backbone, 'Word-region alignment')
        self.hard_negatives = hard_negatives
        self.loss = WordRegionAlignmentLoss(beta, num_iterations)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        pairs = step.matching(self.hard_negatives)
        fused = pairs.fused
        units = step.backbone.unit_valid_mask(pairs.image.inputs)
        visual = pairs.image.encoded.tokens if fused.image_tokens is None else \
            fused.image_tokens
        words = fused.text_mask & ~special_token_mask(step.backbone.tokenizer,
                                                      pairs.text.input_ids)
        if not words.any(dim=1).all():
            raise ValueError('A caption has no word besides special tokens.')
        return dict(loss=self.loss(fused.text_tokens, visual[:, -units.shape[1]:], words,
                                   units, pairs.is_match))

