"""VPT: visual prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022) on the
teacher's ViT, classifying against its fixed template class embeddings.

P learnable tokens are inserted into the ViT's input sequence after the class token
(after the position embeddings). *Shallow*: only the input gets them; *deep*: the prompt
tokens are replaced by new learnable ones at the input of every layer, (layers, P, W) in
all. The prompt tokens are dropped before pooling. Prompts are initialised uniformly in
+-sqrt(6 / (3 * patch_area + W)), VPT's Xavier bound for a patch-embedding-sized fan-in.
"""
import math
from typing import Sequence

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .classifier import PromptClassifier


@MODELS.register_module()
class VPT(PromptClassifier):
    """VPT (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        num_prompts: P prompt tokens per layer.
        deep: new prompts at every layer (VPT-deep) or at the input only (VPT-shallow).
        prompt_dropout: dropout on the prompt tokens while training.
    """

    method_name = 'VPT'

    def __init__(self, teacher, classes, num_prompts: int = 8, deep: bool = False,
                 prompt_dropout: float = 0.0, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        self.backbone.require_vit(self.method_name)
        if num_prompts < 1:
            raise ValueError(f'num_prompts must be >= 1, got {num_prompts}')
        width, layers = self.backbone.image_width, self.backbone.image_layers
        bound = math.sqrt(6.0 / (3 * self.backbone.patch_area + width))
        self.deep = deep
        self.prompts = nn.Parameter(
            torch.empty(layers if deep else 1, num_prompts, width).uniform_(-bound, bound))
        self.prompt_dropout = nn.Dropout(prompt_dropout)

    def prompted_image_embeddings(self, pixels: Tensor) -> Tensor:
        """L2-normalised image embeddings (B, D) with the prompts."""
        prompts = self.prompt_dropout(self.prompts)
        features = self.backbone.prompted_image_features(pixels, prompts[0], list(prompts[1:]))
        return nn.functional.normalize(features.float(), dim=-1)

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        return self.scaled(self.prompted_image_embeddings(pixels),
                           self.template_embeddings(names))
