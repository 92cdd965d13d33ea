"""ViT patch features: an open_clip or timm VisionTransformer returning all its tokens."""
from typing import Optional

import open_clip
import timm
import torch
from timm.models import checkpoint_seq
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import _plain
from .output import EncoderOutput
from .tower import TowerEncoder, load_weights


@MODELS.register_module()
class ViTPatchEncoder(TowerEncoder):
    """Patch tokens and [CLS] of a Vision Transformer.

    ``tokens`` (B, 1 + N, D) are the final-norm outputs of the [CLS] token and the N patches
    (timm models with register tokens put them after [CLS]); ``cls`` (B, D) is the tower's
    pooled feature ([CLS] output, or the patch mean for ``pool_type='avg'``); for open_clip
    towers ``embedding`` (B, embed_dim) is the projected pooled feature, open_clip's
    ``encode_image``. ``patch_mask`` replaces the embeddings of chosen patches with a learned
    [MASK] embedding before the transformer (masked image modelling).

    Args:
        vision_cfg: an open_clip ViT config, as ``model_cfg['vision_cfg']`` of
            :class:`vlkd.vlp.CLIPPretrainer` (``image_size``, ``patch_size``, ``width``,
            ``layers`` (int; ``0`` leaves the patch embedding alone, as ViLT), ``head_width``);
            with ``embed_dim`` (projection size, default the width) and ``quick_gelu``. Or
        timm_model: a timm ViT name (``'vit_tiny_patch16_224'``) built with random weights and
            no classifier, ``timm_kwargs`` overriding its arguments (``img_size``, ``depth``...).
        pretrained: local weights file (state dict or checkpoint) of the tower;
        prefix: the tower's key prefix in that file, e.g. ``'visual.'`` for a whole open_clip
            model, ``'clip.visual.'`` for a ``CLIPPretrainer`` checkpoint. Classifier keys
            (``head.``) of timm files are skipped.
        mask_token: create the learned [MASK] patch embedding (needed for ``patch_mask``).
        frozen: freeze the tower (the [MASK] embedding stays trainable).
        grad_checkpointing: recompute each transformer block's activations in the backward
            pass instead of storing them (less memory, about one more forward pass of time);
            the outputs and gradients are unchanged.
    """

    def __init__(self, vision_cfg: Optional[dict] = None, embed_dim: Optional[int] = None,
                 quick_gelu: bool = False, timm_model: Optional[str] = None,
                 timm_kwargs: Optional[dict] = None, pretrained: Optional[str] = None,
                 prefix: str = '', mask_token: bool = False, frozen: bool = False,
                 grad_checkpointing: bool = False):
        super().__init__()
        if (vision_cfg is None) == (timm_model is None):
            raise ValueError('Give exactly one of vision_cfg (an open_clip ViT config) and '
                             "timm_model (a timm ViT name such as 'vit_tiny_patch16_224').")
        if vision_cfg is not None:
            self.vit = _open_clip_vit(_plain(vision_cfg), embed_dim, quick_gelu)
            self.width = self.vit.conv1.out_channels
            self.embed_dim = self.vit.output_dim
            self.image_size = tuple(self.vit.image_size)
            self.num_patches = self.vit.grid_size[0] * self.vit.grid_size[1]
            ignore = ()
        else:
            self.vit = timm.create_model(timm_model, pretrained=False, num_classes=0,
                                         **_plain(timm_kwargs or {}))
            if not isinstance(self.vit, timm.models.VisionTransformer):
                raise ValueError(f'{timm_model!r} is a {type(self.vit).__name__}, not a timm '
                                 'VisionTransformer; use CNNGridEncoder for convolutional nets.')
            if self.vit.dynamic_img_size:
                raise ValueError('ViTPatchEncoder needs a fixed input size; build the timm '
                                 'model without dynamic_img_size.')
            self.width = self.vit.embed_dim
            self.embed_dim = None
            self.image_size = tuple(self.vit.patch_embed.img_size)
            self.num_patches = self.vit.patch_embed.num_patches
            ignore = ('head.',)
        if pretrained is not None:
            load_weights(self.vit, pretrained, prefix=prefix, ignore=ignore)
        self.mask_token = nn.Parameter(torch.zeros(self.width)) if mask_token else None
        if frozen:
            self.freeze('vit')
        # open_clip's transformer reads the flag itself; timm's blocks are run in forward()
        self.vit.set_grad_checkpointing(grad_checkpointing)

    def _patch_embeddings(self, images: Tensor) -> Tensor:
        if tuple(images.shape[-2:]) != self.image_size or images.dim() != 4:
            raise ValueError(f'ViTPatchEncoder takes (B, 3, {self.image_size[0]}, '
                             f'{self.image_size[1]}) images, got {tuple(images.shape)}.')
        if self.embed_dim is None:
            return self.vit.patch_embed(images)
        return self.vit.conv1(images).flatten(2).transpose(1, 2)

    def _mask(self, patches: Tensor, patch_mask: Optional[Tensor]) -> Tensor:
        if patch_mask is None:
            return patches
        if self.mask_token is None:
            raise ValueError('patch_mask needs the [MASK] embedding: build the encoder with '
                             'mask_token=True.')
        if patch_mask.shape != patches.shape[:2]:
            raise ValueError(f'patch_mask must be (B, N) = {tuple(patches.shape[:2])}, got '
                             f'{tuple(patch_mask.shape)}.')
        return torch.where(patch_mask[..., None], self.mask_token.to(patches.dtype), patches)

    def forward(self, images: Tensor, patch_mask: Optional[Tensor] = None) -> EncoderOutput:
        """Images (B, 3, H, W), normalised as the tower expects; ``patch_mask`` (B, N) bool,
        True for patches to replace with [MASK] (row-major patch order)."""
        x = self._mask(self._patch_embeddings(images), patch_mask)
        vit = self.vit
        if self.embed_dim is None:  # timm
            x = vit.norm_pre(vit.patch_drop(vit._pos_embed(x)))
            x = checkpoint_seq(vit.blocks, x) if vit.grad_checkpointing else vit.blocks(x)
            tokens = vit.norm(x)
            cls, embedding = vit.forward_head(tokens, pre_logits=True), None
        else:  # open_clip
            cls_token = vit.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
            x = torch.cat([cls_token, x], dim=1) + vit.positional_embedding.to(x.dtype)
            x = vit.transformer(vit.ln_pre(vit.patch_dropout(x)))
            tokens = vit.ln_post(x)
            cls, _ = vit._global_pool(tokens)
            embedding = cls @ vit.proj
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return EncoderOutput(tokens=tokens, mask=mask, cls=cls, embedding=embedding)


def _open_clip_vit(vision_cfg: dict, embed_dim: Optional[int], quick_gelu: bool) -> nn.Module:
    if isinstance(vision_cfg.get('layers'), (list, tuple)) or vision_cfg.get('timm_model_name'):
        raise ValueError('vision_cfg describes a ResNet or a timm tower, not an open_clip ViT: '
                         'use CNNGridEncoder, or ViTPatchEncoder(timm_model=...).')
    if vision_cfg.get('attentional_pool') or vision_cfg.get('final_ln_after_pool') or \
            vision_cfg.get('pool_type', 'tok') == 'none':
        raise ValueError('ViTPatchEncoder supports open_clip ViTs with pool_type tok or avg '
                         'and the final LayerNorm on every token (no attentional pooling).')
    embed_dim = embed_dim or vision_cfg['width']
    return open_clip.model._build_vision_tower(embed_dim, vision_cfg, quick_gelu=quick_gelu)
