"""CoOp: context optimisation (Zhou et al., "Learning to Prompt for Vision-Language
Models", IJCV 2022).

The hand-written part of a prompt is replaced by M learnable context vectors in the token
embedding space of the text tower: ``[V]1 .. [V]M NAME .`` (layouts in
:mod:`.text_prompts`). The class embedding of NAME is the text tower's output for its
prompt; an image is classified by ``logit_scale * cos(image, class)``. The image and text
towers stay frozen; only the context vectors (M, W) -- or (C, M, W) with class-specific
context -- are trained, with cross-entropy on few labelled images.

With M = 0 the prompt is the template sentence itself and CoOp is exactly the zero-shot
classifier with that single template; with the context initialised from a phrase
(``context_init='a photo of a'``) it starts as the classifier of ``'a photo of a {}.'``.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .backbones import replace_tokens
from .classifier import PromptClassifier
from .text_prompts import PromptLayout, layout_prompts, phrase_embeddings


class LearnedTextPrompts(nn.Module):
    """Learnable context vectors and the prompt layouts of the vocabularies they embed.

    Args:
        backbone: the teacher's :class:`~vlkd.prompt.backbones.PromptBackbone` (text path).
        num_context: M; None (with ``context_init``): the phrase's token count.
        context_init: a phrase whose token embeddings initialise the context; None: normal
            noise with std ``init_std``.
        template: the fixed text around the class name (CoOp: ``'{}.'``).
        class_position: 'end', 'middle' or 'front'.
        num_classes: with class-specific context, the number of classes C (one context per
            class); None: one context shared by all classes.
    """

    def __init__(self, backbone, num_context: Optional[int] = 16,
                 context_init: Optional[str] = None, template: str = '{}.',
                 class_position: str = 'end', num_classes: Optional[int] = None,
                 init_std: float = 0.02):
        super().__init__()
        self.backbone = backbone
        self.template = template
        self.class_position = class_position
        if context_init is not None:
            init = phrase_embeddings(backbone, context_init)
            if num_context is not None and num_context != len(init):
                raise ValueError(f'context_init {context_init!r} is {len(init)} tokens but '
                                 f'num_context={num_context}: give num_context=None (or '
                                 f'{len(init)}), or another phrase.')
        else:
            if num_context is None:
                raise ValueError('Give num_context, or context_init (a phrase) to take it from.')
            init = torch.randn(num_context, backbone.text_width) * init_std
        if num_classes is not None:
            init = init.unsqueeze(0).repeat(num_classes, 1, 1)
        self.class_specific = num_classes is not None
        self.num_context = init.shape[-2]
        self.context = nn.Parameter(init)
        layout_prompts(backbone, ['x'], self.num_context, template, class_position)  # checks
        self._layouts: Dict[Tuple[str, ...], PromptLayout] = {}

    def layout(self, names: Sequence[str]) -> PromptLayout:
        key = tuple(names)
        if key not in self._layouts:
            self._layouts[key] = layout_prompts(self.backbone, key, self.num_context,
                                                self.template, self.class_position)
        return self._layouts[key].to(self.context.device)

    def token_embeddings(self, names: Sequence[str], context: Tensor) -> Tuple[Tensor, Tensor,
                                                                            Tensor]:
        """(embeddings (..., C, L, W), token ids (C, L), context index (C, M)) of the
        prompts of ``names`` with ``context``: (M, W), (C, M, W), or (B, M, W) for B
        images (CoCoOp), giving (B, C, L, W)."""
        layout = self.layout(names)
        with torch.no_grad():
            fixed = self.backbone.embed_tokens(layout.token_ids)
        if context.dim() == 3 and not self.class_specific:  # one context per image
            batch, classes = len(context), len(names)
            tokens = fixed.unsqueeze(0).expand(batch, -1, -1, -1).flatten(0, 1)
            index = layout.context_index.repeat(batch, 1)
            values = context.unsqueeze(1).expand(-1, classes, -1, -1).flatten(0, 1)
            embedded = replace_tokens(tokens, index, values)
            return embedded.view(batch, classes, *fixed.shape[1:]), layout.token_ids, \
                layout.context_index
        return replace_tokens(fixed, layout.context_index, context), layout.token_ids, \
            layout.context_index

    def encode(self, names: Sequence[str], context: Optional[Tensor] = None,
               deep_prompts: Sequence[Tensor] = ()) -> Tensor:
        """Text embeddings (C, D), not normalised, of the prompts of ``names`` (``context``
        defaults to the learned one, restricted to ``names`` if class-specific)."""
        if context is None:
            context = self.context
        embeddings, token_ids, index = self.token_embeddings(names, context)
        return self.backbone.encode_token_embeddings(embeddings, token_ids, deep_prompts, index)


@MODELS.register_module()
class CoOp(PromptClassifier):
    """CoOp (module doc). Arguments of :class:`PromptClassifier`, and:

    Args:
        num_context: M context vectors; 0 gives the template classifier. None: 16, or
            the phrase's token count with ``context_init``.
        context_init: phrase initialising the context; None: random (std ``init_std``).
        template: fixed text around the class name, ``'{}.'`` in CoOp.
        class_position: 'end' (CoOp's default), 'middle' or 'front'.
        class_specific: one context per class (CSC); such a model scores only its
            training classes.
    """

    method_name = 'CoOp'
    learns_text_prompts = True

    def __init__(self, teacher, classes, num_context: Optional[int] = None,
                 context_init: Optional[str] = None, template: str = '{}.',
                 class_position: str = 'end', class_specific: bool = False,
                 init_std: float = 0.02, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        self.backbone.require_text_tokens(self.method_name)
        if num_context is None and context_init is None:
            num_context = 16
        self.prompts = LearnedTextPrompts(
            self.backbone, num_context, context_init, template, class_position,
            num_classes=len(self.classes) if class_specific else None, init_std=init_std)
        if class_specific:
            self.class_indices(self.test_classes)

    def text_embeddings(self, names: Sequence[str]) -> Tensor:
        """L2-normalised class embeddings (C, D) of ``names`` under the learned context."""
        context = self.prompts.context
        if self.prompts.class_specific:
            context = context[self.class_indices(names)]
        return F.normalize(self.prompts.encode(names, context).float(), dim=-1)

    def logits(self, pixels: Tensor, names: Sequence[str]) -> Tensor:
        return self.scaled(self.image_embeddings(pixels), self.text_embeddings(names))

    @torch.no_grad()
    def class_embeddings(self, names: Sequence[str]) -> Tensor:
        return self.text_embeddings(names)
