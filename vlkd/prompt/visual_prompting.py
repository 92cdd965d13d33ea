"""Visual prompting by a learnable pixel perturbation (Bahng et al., "Exploring Visual
Prompts for Adapting Large-Scale Models", 2022): the *padding* prompt.

A frame of learnable pixels, ``pad_size`` wide, is added to every (normalised) image at
the teacher's input size; the centre is left as it is. The teacher stays frozen and its
template class embeddings classify, so this works with any teacher: nothing inside a
tower is touched. Parameters: 2 * 3 * p * S + 2 * 3 * (S - 2p) * p.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .classifier import PromptClassifier


class PaddingPrompt(nn.Module):
    """A learnable frame of width ``pad_size`` px around (3, S, S) images, zero inside."""

    def __init__(self, image_size: int, pad_size: int):
        super().__init__()
        if not 0 < 2 * pad_size < image_size:
            raise ValueError(f'pad_size must be in (0, {image_size / 2}) for {image_size} px '
                             f'images, got {pad_size}')
        inner = image_size - 2 * pad_size
        self.pad_size = pad_size
        self.top = nn.Parameter(torch.randn(1, 3, pad_size, image_size))
        self.bottom = nn.Parameter(torch.randn(1, 3, pad_size, image_size))
        self.left = nn.Parameter(torch.randn(1, 3, inner, pad_size))
        self.right = nn.Parameter(torch.randn(1, 3, inner, pad_size))

    def frame(self) -> Tensor:
        """The prompt (1, 3, S, S)."""
        inner = self.left.shape[2]
        centre = self.left.new_zeros(1, 3, inner, inner)
        middle = torch.cat([self.left, centre, self.right], dim=3)
        return torch.cat([self.top, middle, self.bottom], dim=2)

    def forward(self, pixels: Tensor) -> Tensor:
        return pixels + self.frame().to(pixels.dtype)


@MODELS.register_module()
class VisualPaddingPrompt(PromptClassifier):
    """Padding visual prompt (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        pad_size: frame width in pixels of the teacher's input (Bahng et al.: 30 of 224).
    """

    method_name = 'VisualPaddingPrompt'

    def __init__(self, teacher, classes, pad_size: int = 30, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        self.prompt = PaddingPrompt(self.teacher.image_size, pad_size)

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        images = F.normalize(self.backbone.image_features(self.prompt(pixels)).float(), dim=-1)
        return self.scaled(images, self.template_embeddings(names))
