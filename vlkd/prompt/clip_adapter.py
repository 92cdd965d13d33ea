"""CLIP-Adapter (Gao et al., "CLIP-Adapter: Better Vision-Language Models with Feature
Adapters", IJCV 2023): a residual bottleneck MLP on the frozen image embedding.

    A(f) = ReLU(W2 ReLU(W1 f)),   W1: D -> D / reduction, W2: D / reduction -> D
    f'   = ratio * A(f) + (1 - ratio) * f

f is the teacher's (unnormalised) image embedding; f' is normalised and compared with the
fixed template class embeddings. ``ratio`` keeps part of the zero-shot knowledge: 0 is
the zero-shot classifier, 1 uses only the adapted feature (the paper's best ratio on
ImageNet is 0.2). Works with any teacher.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .classifier import PromptClassifier


@MODELS.register_module()
class CLIPAdapter(PromptClassifier):
    """CLIP-Adapter (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        reduction: bottleneck factor of the adapter (D -> D / reduction -> D).
        ratio: residual mixing ratio in [0, 1].
    """

    method_name = 'CLIPAdapter'

    def __init__(self, teacher, classes, reduction: int = 4, ratio: float = 0.2, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f'ratio must be in [0, 1], got {ratio}')
        dim = self.backbone.embed_dim
        hidden = max(1, dim // reduction)
        self.ratio = ratio
        self.adapter = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, dim, bias=False), nn.ReLU(inplace=True))

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        with torch.no_grad():
            features = self.backbone.image_features(pixels).float()
        adapted = self.ratio * self.adapter(features) + (1 - self.ratio) * features
        return self.scaled(F.normalize(adapted, dim=-1), self.template_embeddings(names))
