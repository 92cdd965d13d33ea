"""GLIP-style grounding: detection as alignment of regions with the words of a class prompt."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.objectives import RegionWordAlignmentLoss, token_logits_to_class_logits
from vlkd.vlp.views import TextView, VisualView
from .base import PretrainingStep, PretrainingTask, special_token_mask


def class_prompt(tokenizer, classes: Sequence[str]) -> Tuple[Tensor, Tensor, Tensor]:
    """The detection prompt "circle. square. ... arrow." as token ids (1, L), its padding
    mask (1, L) and the (C, L) bool map of each class name's tokens in it."""
    encoded = tokenizer(['. '.join(classes) + '.'])
    ids, mask = encoded['input_ids'], encoded['attention_mask']
    class_map = torch.zeros(len(classes), ids.shape[1], dtype=torch.bool)
    start = 0
    row = ids[0].tolist()
    for index, name in enumerate(classes):
        alone = tokenizer([name])
        words = alone['input_ids'][0][alone['attention_mask'][0]]
        words = words[~special_token_mask(tokenizer, words)].tolist()
        for position in range(start, len(row) - len(words) + 1):
            if row[position:position + len(words)] == words:
                class_map[index, position:position + len(words)] = True
                start = position + len(words)
                break
        else:
            raise ValueError(f'class name {name!r} was not found in the prompt (was it cut off '
                             f'by the tokenizer\'s max_length={len(row)}?).')
    return ids, mask, class_map


@MODELS.register_module()
class RegionGroundingTask(PretrainingTask):
    """Region-word alignment against a prompt of class names (GLIP's detection data as
    grounding): each region is aligned to the tokens of its class name with the focal loss of
    :class:`~vlkd.vlp.objectives.RegionWordAlignmentLoss`; regions of other classes or of no
    object are aligned to nothing. Region classes come from ``region_labels`` in the data
    samples (indices into ``label_classes``, -1 for background; see
    :class:`vlkd.vlp.region_data.AssignRegionLabels`); a labelled class missing from the
    prompt counts as background (open-vocabulary training on base classes). With a fusion
    module that updates both streams (single-stream, co-attention: GLIP's deep fusion)
    regions and prompt are fused first.

    ``class_scores`` classifies visual inputs among any class names: per class the mean
    logit of its name's tokens in their prompt, the highest over the input's regions.

    Args:
        classes: the class names of the training prompt.
        label_classes: the class names that ``region_labels`` index (default ``classes``).
        embed_dim: size of the space regions and tokens are projected to.
        loss_type, prior_prob: focal (GLIP) or BCE loss; initial alignment probability.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, classes: Sequence[str],
                 label_classes: Optional[Sequence[str]] = None, embed_dim: int = 128,
                 loss_type: str = 'focal', prior_prob: float = 0.01, weight: float = 1.0,
                 stages=None):
        super().__init__(weight, stages)
        self.classes: List[str] = list(classes)
        label_classes = list(label_classes or classes)
        unknown = sorted(set(self.classes) - set(label_classes))
        if unknown:
            raise ValueError(f'prompt classes {unknown} are not among label_classes.')
        fused = backbone.fusion_width is not None
        self.loss = RegionWordAlignmentLoss(
            backbone.fusion_width if fused else backbone.image_width,
            backbone.fusion_width if fused else backbone.text_width, embed_dim,
            loss_type=loss_type, prior_prob=prior_prob)
        # label index -> prompt class index (-1: not in the prompt, background)
        self.register_buffer('label_to_class', torch.tensor(
            [self.classes.index(n) if n in self.classes else -1 for n in label_classes]),
            persistent=False)

    def prompt(self, backbone, classes: Sequence[str]) -> Tuple[Tensor, Tensor, Tensor]:
        """(ids (1, L), padding mask (1, L), class token map (C, L)) on the device."""
        ids, mask, class_map = class_prompt(backbone.tokenizer, classes)
        device = self.label_to_class.device
        return ids.to(device), mask.to(device), class_map.to(device)

    def features(self, backbone, image: VisualView, ids: Tensor, mask: Tensor
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """(region features (B, R, ·) of the R visual units, prompt token features
        (B, L, ·), the units' valid mask (B, R)): fused when the backbone fuses."""
        batch = len(image)
        text = TextView(backbone, ids.expand(batch, -1), mask.expand(batch, -1))
        if backbone.fusion_width is not None:
            fused = backbone.fuse(image, text)
            if fused.image_tokens is None:
                raise ValueError('Grounding needs fused region tokens: use single-stream or '
                                 'co-attention fusion (or none).')
            regions, tokens = fused.image_tokens, fused.text_tokens
        else:
            regions, tokens = image.encoded.tokens, text.encoded.tokens
        units = backbone.unit_valid_mask(image.inputs)
        return regions[:, -units.shape[1]:], tokens, units

    def region_classes(self, step: PretrainingStep, units: Tensor) -> Tensor:
        """(B, R) prompt class of every region, -1 for background and padding."""
        labels = torch.full(units.shape, -1, dtype=torch.long, device=units.device)
        for row, sample in enumerate(step.samples):
            if 'region_labels' not in sample:
                raise ValueError('Grounding needs region_labels in every data sample: add '
                                 'AssignRegionLabels to the pipeline and pack region_labels.')
            sample_labels = torch.as_tensor(sample.region_labels)[:units.shape[1]]
            labels[row, :len(sample_labels)] = sample_labels.to(units.device)
        return torch.where(labels >= 0, self.label_to_class[labels.clamp(min=0)], labels)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        ids, mask, class_map = self.prompt(step.backbone, self.classes)
        regions, tokens, units = self.features(step.backbone, step.image, ids, mask)
        classes = self.region_classes(step, units)
        positive = class_map[classes.clamp(min=0)] & (classes >= 0)[..., None]
        words = mask & ~special_token_mask(step.backbone.tokenizer, ids)
        return dict(loss=self.loss(regions, tokens, positive, words.expand(len(regions), -1),
                                   units))

    def class_scores(self, backbone, image: VisualView, classes: Sequence[str]) -> Tensor:
        """(B, C) logits of ``classes`` for each visual input (see the class doc)."""
        ids, mask, class_map = self.prompt(backbone, classes)
        regions, tokens, units = self.features(backbone, image, ids, mask)
        logits = self.loss.logits(regions, tokens)
        scores = token_logits_to_class_logits(logits, class_map)  # (B, R, C)
        return scores.masked_fill(~units[..., None], -torch.inf).amax(dim=1)
