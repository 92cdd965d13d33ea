"""MaPLe: multi-modal prompt learning (Khattak et al., "MaPLe: Multi-modal Prompt
Learning", CVPR 2023).

Text prompts as in CoOp (M context vectors at the input, initialised from a phrase) plus
deep text prompts: new M learnable tokens replace the context tokens at the input of text
layers 1 .. J-1. The visual prompts are not free parameters: each layer's M visual prompt
tokens are a linear function of that layer's text prompts (the coupling functions
F_j: W_text -> W_image, one per layer j < J), inserted into the ViT as in VPT-deep for
layers 0 .. J-1. Gradients through the visual prompts reach the text prompts, which keeps
the two modalities' prompts in step.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .classifier import PromptClassifier
from .coop import LearnedTextPrompts


@MODELS.register_module()
class MaPLe(PromptClassifier):
    """MaPLe (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        num_context: M prompt tokens per layer and modality (None: the phrase's length).
        context_init: phrase initialising the input text prompts (MaPLe: 'a photo of a').
        depth: J, the number of layers with prompts (MaPLe: 9 of 12); at most the depth of
            the shallower tower; None: all of its layers.
        template: fixed text around the class name.
    """

    method_name = 'MaPLe'
    learns_text_prompts = True

    def __init__(self, teacher, classes, num_context: Optional[int] = None,
                 context_init: Optional[str] = 'a photo of a', depth: Optional[int] = 9,
                 template: str = '{}.', init_std: float = 0.02, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        self.backbone.require_text_tokens(self.method_name)
        self.backbone.require_vit(self.method_name)
        limit = min(self.backbone.text_layers, self.backbone.image_layers)
        depth = limit if depth is None else depth
        if not 1 <= depth <= limit:
            raise ValueError(f'MaPLe depth must be in 1..{limit} (the layers of the '
                             f'shallower tower), got {depth}')
        self.prompts = LearnedTextPrompts(self.backbone, num_context, context_init, template,
                                          'end', init_std=init_std)
        width = self.backbone.text_width
        self.deep_text_prompts = nn.Parameter(
            torch.randn(depth - 1, self.prompts.num_context, width) * init_std)
        self.couplings = nn.ModuleList(nn.Linear(width, self.backbone.image_width)
                                       for _ in range(depth))

    def visual_prompts(self):
        """(input prompts (M, W_image), [prompts of layers 1 .. J-1])."""
        text_prompts = [self.prompts.context] + list(self.deep_text_prompts)
        visual = [coupling(prompts) for coupling, prompts in zip(self.couplings, text_prompts)]
        return visual[0], visual[1:]

    def text_embeddings(self, names: Sequence[str]) -> Tensor:
        """L2-normalised class embeddings (C, D) under the learned text prompts."""
        texts = self.prompts.encode(names, deep_prompts=list(self.deep_text_prompts))
        return F.normalize(texts.float(), dim=-1)

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        prompts, deep_prompts = self.visual_prompts()
        images = self.backbone.prompted_image_features(pixels, prompts, deep_prompts)
        return self.scaled(F.normalize(images.float(), dim=-1), self.text_embeddings(names))

    @torch.no_grad()
    def class_embeddings(self, names: Sequence[str]) -> Tensor:
        return self.text_embeddings(names)
