"""CoCoOp: conditional context optimisation (Zhou et al., "Conditional Prompt Learning for
Vision-Language Models", CVPR 2022).

CoOp's shared context vectors plus an instance-conditional shift: a small meta-network
(Linear D -> D/16, ReLU, Linear D/16 -> W) maps the image embedding x to a token pi(x),
added to every context vector, so each image gets its own prompts::

    v_m(x) = v_m + pi(x),   prompt_c(x) = [v_1(x) .. v_M(x)] NAME .

The class embeddings are therefore computed per image: B images and C classes run B x C
prompts through the text tower (CoCoOp trains with small batches for that reason).
"""
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .classifier import PromptClassifier, ClassVocabularyError
from .coop import LearnedTextPrompts


@MODELS.register_module()
class CoCoOp(PromptClassifier):
    """CoCoOp (module doc). Arguments of :class:`PromptClassifier`, and those of
    :class:`~vlkd.prompt.coop.CoOp` (shared context only), and:

    Args:
        meta_reduction: hidden width of the meta-network is D // ``meta_reduction``.
    """

    method_name = 'CoCoOp'

    def __init__(self, teacher, classes, num_context: Optional[int] = None,
                 context_init: Optional[str] = 'a photo of a', template: str = '{}.',
                 class_position: str = 'end', meta_reduction: int = 16,
                 init_std: float = 0.02, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        self.backbone.require_text_tokens(self.method_name)
        self.prompts = LearnedTextPrompts(self.backbone, num_context, context_init, template,
                                          class_position, init_std=init_std)
        dim, width = self.backbone.embed_dim, self.backbone.text_width
        hidden = max(1, dim // meta_reduction)
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                      nn.Linear(hidden, width))

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        images = self.image_embeddings(pixels)                            # (B, D)
        context = self.prompts.context + self.meta_net(images).unsqueeze(1)  # (B, M, W)
        embeddings, token_ids, index = self.prompts.token_embeddings(names, context)
        batch, classes = embeddings.shape[:2]
        texts = self.backbone.encode_token_embeddings(
            embeddings.flatten(0, 1), token_ids.repeat(batch, 1), (), index.repeat(batch, 1))
        texts = F.normalize(texts.float(), dim=-1).view(batch, classes, -1)  # (B, C, D)
        return self.logit_scale * (images.unsqueeze(1) * texts).sum(-1)

    def class_embeddings(self, names: Sequence[str]) -> Tensor:
        raise ClassVocabularyError(
            'CoCoOp conditions its prompts on each image: a class has no embedding without '
            'an image, so it cannot be exported for a detector or segmenter. Export CoOp or '
            'MaPLe prompts instead.')
