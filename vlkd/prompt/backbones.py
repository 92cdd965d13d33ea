"""Access to a frozen teacher's towers for prompt learning.

Feature adaptation (CLIP-Adapter, Tip-Adapter, linear probe) and pixel-space prompts need
only the teacher's image embeddings, which every :class:`~vlkd.teachers.Teacher` gives.
Prompt tuning needs more: CoOp, CoCoOp and MaPLe put learnable vectors among the text
tower's token embeddings, VPT and MaPLe put learnable tokens into the ViT. A
:class:`PromptBackbone` opens those paths on the model behind a teacher:

================================== ============================= ============================
teacher model                      text token path               ViT token path
================================== ============================= ============================
open_clip ``CLIP`` (OpenCLIPTeacher, yes                          ViT image towers
vlkd CLIPPretrainer checkpoints)
transformers ``CLIPModel``          yes                           yes
anything else (VLPModel recipes)   no: a clear error             no: a clear error
================================== ============================= ============================

:func:`prompt_backbone` picks the accessor of a teacher. Accessors hold references to the
teacher's modules and add no weights. Conventions:

- pixels are normalised the teacher's way, (B, 3, S, S) at the tower's input side S;
- token embeddings are (N, L, W) before position embeddings, ``token_ids`` (N, L) the ids
  whose end-of-text position pools the sequence;
- a deep prompt list holds, for layers 1, 2, ..., the tokens that replace the prompt
  tokens at that layer's input (the first layer gets the prompts of the input sequence);
- outputs are embeddings (N, D) in the joint space, not normalised.
"""
import math
from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ['PromptBackbone', 'OpenCLIPBackbone', 'HFCLIPBackbone', 'UnsupportedBackboneError',
           'prompt_backbone', 'register_backbone', 'replace_tokens']

# Methods that need nothing but image embeddings: named in the errors below.
_ANY_TEACHER = 'CLIP-Adapter, Tip-Adapter(-F), the linear probe and the padding visual prompt'


class UnsupportedBackboneError(TypeError):
    """A prompt method needs a path into a tower that this teacher's model does not open."""


def replace_tokens(tokens: Tensor, index: Tensor, values: Tensor) -> Tensor:
    """``tokens`` (N, L, W) with the positions ``index`` (N, P) replaced by ``values``
    ((P, W), or (N, P, W)); out of place, differentiable in ``values``."""
    n, _, width = tokens.shape
    values = values.to(tokens.dtype)
    if values.dim() == 2:
        values = values.unsqueeze(0).expand(n, -1, -1)
    return tokens.scatter(1, index.unsqueeze(-1).expand(-1, -1, width), values)


class PromptBackbone:
    """Any teacher: image embeddings with gradients to the pixels; the token paths raise
    :class:`UnsupportedBackboneError`. Subclasses open them for a model family.

    Args:
        teacher: a :class:`vlkd.teachers.Teacher` (frozen).
    """

    def __init__(self, teacher):
        self.teacher = teacher
        self.embed_dim = teacher.embed_dim
        self.image_size = teacher.image_size

    @classmethod
    def accepts(cls, teacher) -> bool:
        """Whether this accessor opens the model of ``teacher``."""
        return True

    @property
    def description(self) -> str:
        model = getattr(self.teacher, 'model', None)
        inner = f' around a {type(model).__name__}' if model is not None else ''
        return f'{type(self.teacher).__name__}{inner}'

    @property
    def logit_scale(self) -> Optional[float]:
        """The teacher's learned temperature (exp of its log scale), if it has one."""
        return None

    def image_features(self, pixels: Tensor) -> Tensor:
        """Image embeddings (B, D) of normalised pixels (B, 3, S, S)."""
        return self.teacher._image_features(pixels)

    # -- the text token path -----------------------------------------------------------
    def require_text_tokens(self, method: str) -> None:
        """Raise unless the learnable-token text path is available."""
        raise UnsupportedBackboneError(
            f'{method} puts learnable vectors among the token embeddings of the text tower, '
            f'which vlkd can open for open_clip CLIP and transformers CLIPModel teachers; '
            f'this teacher is a {self.description}. With this teacher use {_ANY_TEACHER}.')

    def require_vit(self, method: str) -> None:
        """Raise unless the learnable-token ViT path is available."""
        raise UnsupportedBackboneError(
            f'{method} inserts prompt tokens into a ViT image tower, which vlkd can open for '
            f'open_clip and transformers CLIP ViTs; this teacher is a {self.description}. '
            f'With this teacher use {_ANY_TEACHER}.')

    context_length: int
    text_width: int
    text_layers: int
    bos_id: int
    eos_id: int
    pad_id: int

    def word_ids(self, text: str) -> List[int]:
        """Token ids of ``text`` without start / end tokens."""
        self.require_text_tokens('Token-level text prompts')

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """Token embeddings (N, L, W) of ids (N, L), without position embeddings."""
        self.require_text_tokens('Token-level text prompts')

    def encode_token_embeddings(self, embeddings: Tensor, token_ids: Tensor,
                                deep_prompts: Sequence[Tensor] = (),
                                prompt_index: Optional[Tensor] = None) -> Tensor:
        """Text embeddings (N, D) from token embeddings (N, L, W); ``deep_prompts`` replace
        the tokens at ``prompt_index`` (N, P) at the input of layers 1, 2, ..."""
        self.require_text_tokens('Token-level text prompts')

    # -- the ViT token path ------------------------------------------------------------
    image_width: int
    image_layers: int
    patch_area: int

    def prompted_image_features(self, pixels: Tensor, prompts: Tensor,
                                deep_prompts: Sequence[Tensor] = ()) -> Tensor:
        """Image embeddings (B, D) with P prompt tokens ``prompts`` ((P, W) or (B, P, W))
        inserted after the class token; ``deep_prompts`` replace them at layers 1, 2, ...
        Prompt tokens are dropped before pooling."""
        self.require_vit('Visual prompt tokens')

    # -- helpers for subclasses --------------------------------------------------------
    @staticmethod
    def _check_deep(deep_prompts: Sequence[Tensor], layers: int, tower: str) -> None:
        if len(deep_prompts) > layers - 1:
            raise ValueError(f'{len(deep_prompts)} deep prompt layers given, but the {tower} '
                             f'tower has {layers} layers: at most {layers - 1} (layers 1..'
                             f'{layers - 1}; layer 0 takes the input prompts).')


_BACKBONES: List[type] = []


def register_backbone(cls: type) -> type:
    """Make ``cls`` (a :class:`PromptBackbone` whose ``accepts`` says which teachers it
    opens) one of the accessors :func:`prompt_backbone` tries, before the generic one."""
    _BACKBONES.append(cls)
    return cls


def prompt_backbone(teacher) -> PromptBackbone:
    """The accessor of ``teacher``: the first registered one that accepts it, else the
    generic :class:`PromptBackbone` (image embeddings only)."""
    for cls in _BACKBONES:
        if cls.accepts(teacher):
            return cls(teacher)
    return PromptBackbone(teacher)


def _expand_prompts(prompts: Tensor, batch: int, dtype: torch.dtype) -> Tensor:
    prompts = prompts.to(dtype)
    return prompts.unsqueeze(0).expand(batch, -1, -1) if prompts.dim() == 2 else prompts


def _run_blocks(blocks: Sequence[nn.Module], x: Tensor,
                call: Callable[[nn.Module, Tensor], Tensor],
                insert: Callable[[Tensor, Tensor], Tensor],
                deep_prompts: Sequence[Tensor]) -> Tensor:
    """Run transformer ``blocks`` on ``x``; before block i >= 1, ``insert(x,
    deep_prompts[i - 1])`` when there is one."""
    for i, block in enumerate(blocks):
        if 0 < i <= len(deep_prompts):
            x = insert(x, deep_prompts[i - 1])
        x = call(block, x)
    return x


@register_backbone
class OpenCLIPBackbone(PromptBackbone):
    """open_clip ``CLIP`` (text path: its own text transformer; ViT path: its
    ``VisionTransformer``), as held by OpenCLIPTeacher and vlkd CLIPPretrainer
    checkpoints. ``CustomTextCLIP`` (a transformers text tower) opens only the ViT path."""

    @classmethod
    def accepts(cls, teacher) -> bool:
        import open_clip
        return isinstance(getattr(teacher, 'model', None), (open_clip.CLIP,
                                                              open_clip.CustomTextCLIP))

    def __init__(self, teacher):
        super().__init__(teacher)
        from open_clip.transformer import VisionTransformer
        self.model = teacher.model
        self.tokenizer = teacher.tokenizer
        self.has_text_tokens = hasattr(self.model, 'token_embedding') and all(
            hasattr(self.tokenizer, name) for name in ('encode', 'sot_token_id', 'eot_token_id'))
        self.has_vit = isinstance(self.model.visual, VisionTransformer)
        if self.has_text_tokens:
            self.context_length = int(self.model.positional_embedding.shape[0])
            self.text_width = int(self.model.token_embedding.embedding_dim)
            self.text_layers = len(self.model.transformer.resblocks)
            self.bos_id = int(self.tokenizer.sot_token_id)
            self.eos_id = int(self.tokenizer.eot_token_id)
            self.pad_id = 0  # open_clip pads with zeros
        if self.has_vit:
            visual = self.model.visual
            self.image_width = int(visual.class_embedding.shape[0])
            self.image_layers = len(visual.transformer.resblocks)
            self.patch_area = int(math.prod(visual.patch_size))

    @property
    def logit_scale(self) -> Optional[float]:
        return float(self.model.logit_scale.detach().exp().reshape(-1)[0])

    def require_text_tokens(self, method: str) -> None:
        if not self.has_text_tokens:
            super().require_text_tokens(method)

    def require_vit(self, method: str) -> None:
        if not self.has_vit:
            super().require_vit(method)

    @property
    def description(self) -> str:
        return (f'{type(self.teacher).__name__} around an open_clip '
                f'{type(self.model).__name__} with a {type(self.model.visual).__name__} '
                'image tower')

    # -- text ----------------------------------------------------------------------------
    def word_ids(self, text: str) -> List[int]:
        self.require_text_tokens('Token-level text prompts')
        return list(self.tokenizer.encode(text))

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        self.require_text_tokens('Token-level text prompts')
        return self.model.token_embedding(token_ids)

    def encode_token_embeddings(self, embeddings: Tensor, token_ids: Tensor,
                                deep_prompts: Sequence[Tensor] = (),
                                prompt_index: Optional[Tensor] = None) -> Tensor:
        from open_clip.transformer import text_global_pool
        self.require_text_tokens('Token-level text prompts')
        self._check_deep(deep_prompts, self.text_layers, 'text')
        model = self.model
        cast_dtype = model.transformer.get_cast_dtype()
        x = embeddings.to(cast_dtype) + model.positional_embedding.to(cast_dtype)
        batch_first = model.transformer.batch_first

        def call(block, x):
            if batch_first:
                return block(x, attn_mask=model.attn_mask)
            return block(x.transpose(0, 1), attn_mask=model.attn_mask).transpose(0, 1)

        x = _run_blocks(model.transformer.resblocks, x, call,
                        lambda x, prompts: replace_tokens(x, prompt_index, prompts), deep_prompts)
        x = model.ln_final(x)
        x = text_global_pool(x, token_ids, model.text_pool_type,
                             eos_token_id=getattr(model, 'text_eos_id', None))
        projection = model.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection

    # -- ViT -----------------------------------------------------------------------------
    def prompted_image_features(self, pixels: Tensor, prompts: Tensor,
                                deep_prompts: Sequence[Tensor] = ()) -> Tensor:
        self.require_vit('Visual prompt tokens')
        self._check_deep(deep_prompts, self.image_layers, 'image')
        visual = self.model.visual
        x = visual.conv1(pixels).flatten(2).transpose(1, 2)  # (B, grid**2, W)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(len(x), -1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        # the teacher is in eval mode: patch dropout is the identity and is not applied
        num_prompts = prompts.shape[-2]
        x = torch.cat([x[:, :1], _expand_prompts(prompts, len(x), x.dtype), x[:, 1:]], dim=1)
        x = visual.ln_pre(x)
        batch_first = visual.transformer.batch_first

        def call(block, x):
            return block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)

        def insert(x, layer_prompts):
            layer_prompts = _expand_prompts(layer_prompts, len(x), x.dtype)
            return torch.cat([x[:, :1], layer_prompts, x[:, 1 + num_prompts:]], dim=1)

        x = _run_blocks(visual.transformer.resblocks, x, call, insert, deep_prompts)
        x = torch.cat([x[:, :1], x[:, 1 + num_prompts:]], dim=1)
        pooled, _ = visual._pool(x)
        return pooled @ visual.proj if visual.proj is not None else pooled


@register_backbone
class HFCLIPBackbone(PromptBackbone):
    """transformers ``CLIPModel``: text path through ``text_model`` (embeddings, causal
    encoder, final norm, end-of-text pooling) and ``text_projection``; ViT path through
    ``vision_model`` and ``visual_projection``. The teacher's ``tokenizer`` is a
    transformers CLIP tokenizer (``encode`` without special tokens, ``bos_token_id``,
    ``eos_token_id``, ``pad_token_id``)."""

    @classmethod
    def accepts(cls, teacher) -> bool:
        from transformers import CLIPModel
        return isinstance(getattr(teacher, 'model', None), CLIPModel)

    def __init__(self, teacher):
        super().__init__(teacher)
        self.model = teacher.model
        self.tokenizer = teacher.tokenizer
        text, vision = self.model.text_model, self.model.vision_model
        self.context_length = int(text.embeddings.position_embedding.num_embeddings)
        self.text_width = int(text.config.hidden_size)
        self.text_layers = len(text.encoder.layers)
        self.bos_id = int(self.tokenizer.bos_token_id)
        self.eos_id = int(self.tokenizer.eos_token_id)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(self.eos_id if pad is None else pad)
        self.image_width = int(vision.config.hidden_size)
        self.image_layers = len(vision.encoder.layers)
        self.patch_area = int(vision.config.patch_size) ** 2

    @property
    def logit_scale(self) -> Optional[float]:
        return float(self.model.logit_scale.detach().exp())

    def require_text_tokens(self, method: str) -> None:
        pass

    def require_vit(self, method: str) -> None:
        pass

    def word_ids(self, text: str) -> List[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        return self.model.text_model.embeddings.token_embedding(token_ids)

    def encode_token_embeddings(self, embeddings: Tensor, token_ids: Tensor,
                                deep_prompts: Sequence[Tensor] = (),
                                prompt_index: Optional[Tensor] = None) -> Tensor:
        from transformers.masking_utils import create_causal_mask
        self._check_deep(deep_prompts, self.text_layers, 'text')
        text = self.model.text_model
        x = text.embeddings(inputs_embeds=embeddings)
        mask = create_causal_mask(config=text.config, inputs_embeds=x, attention_mask=None,
                                  past_key_values=None)
        x = _run_blocks(text.encoder.layers, x,
                        lambda layer, x: layer(x, mask, is_causal=True),
                        lambda x, prompts: replace_tokens(x, prompt_index, prompts), deep_prompts)
        x = text.final_layer_norm(x)
        rows = torch.arange(len(x), device=x.device)
        if text.eos_token_id == 2:  # configs from before transformers#24773: the largest id
            pooled = x[rows, token_ids.argmax(dim=-1)]
        else:
            pooled = x[rows, (token_ids == text.eos_token_id).int().argmax(dim=-1)]
        return self.model.text_projection(pooled)

    def prompted_image_features(self, pixels: Tensor, prompts: Tensor,
                                deep_prompts: Sequence[Tensor] = ()) -> Tensor:
        self._check_deep(deep_prompts, self.image_layers, 'image')
        vision = self.model.vision_model
        x = vision.embeddings(pixels)  # (B, 1 + grid**2, W) with positions
        num_prompts = prompts.shape[-2]
        x = torch.cat([x[:, :1], _expand_prompts(prompts, len(x), x.dtype), x[:, 1:]], dim=1)
        x = vision.pre_layrnorm(x)

        def insert(x, layer_prompts):
            layer_prompts = _expand_prompts(layer_prompts, len(x), x.dtype)
            return torch.cat([x[:, :1], layer_prompts, x[:, 1 + num_prompts:]], dim=1)

        x = _run_blocks(vision.encoder.layers, x, lambda layer, x: layer(x, None), insert,
                        deep_prompts)
        return self.model.visual_projection(vision.post_layernorm(x[:, 0]))
