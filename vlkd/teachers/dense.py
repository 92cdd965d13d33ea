"""Dense (per-location) embeddings of CLIP image towers in the joint image-text space.

MaskCLIP (Zhou, Loy and Dai, "Extract Free Dense Labels from CLIP", ECCV 2022) reads dense
embeddings out of a frozen CLIP without training anything:

- **ViT towers** (open_clip :class:`~open_clip.transformer.VisionTransformer`, transformers
  ``CLIPVisionModel``): the last transformer block is run with its query-key attention
  skipped, i.e. every token attends only to itself, so the attention output of token ``x``
  is ``out_proj(v_proj(ln_1(x)))``. The block keeps its residual connections and its MLP
  (as the public MaskCLIP code does)::

      v = x + out_proj(v_proj(ln_1(x)))
      v = v + mlp(ln_2(v))
      embedding = ln_post(v) @ proj          # patch tokens only, [CLS] dropped

  Positional embeddings are resized (bicubic) to the patch grid of the input, so any input
  size that is a multiple of the patch size works.
- **ResNet towers** (open_clip :class:`~open_clip.modified_resnet.ModifiedResNet`): the
  attention pool's value and output projections at every location of the last feature map,
  ``c_proj(v_proj(x))``, without the pool's positional embedding (MaskCLIP's RN50 recipe).

Each function returns :class:`DenseFeatures`: the embeddings (B, D, h, w), not normalised,
and the keys (B, K, h, w) of the same attention (``k_proj`` of the last block's normalised
input, or of the feature map for ResNets), which key smoothing compares
(:func:`vlkd.teachers.dense_scores.key_smoothing`). These are the keys the attention uses;
the public MaskCLIP code also passes them through the output projection.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import Tensor, nn


@dataclass
class DenseFeatures:
    """Per-location outputs of an image tower.

    Attributes:
        embeddings: (B, D, h, w) joint-space embeddings, any norm.
        keys: (B, K, h, w) keys of the last attention at each location, or None where the
            tower has none.
    """
    embeddings: Tensor
    keys: Optional[Tensor] = None


def _to_map(tokens: Tensor, grid: Tuple[int, int]) -> Tensor:
    """(B, h*w, C) row-major tokens -> (B, C, h, w)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def resize_positions(positions: Tensor, grid: Tuple[int, int],
                     new_grid: Tuple[int, int]) -> Tensor:
    """Positional embeddings (1 + gh*gw, C) of a [CLS] token and a gh x gw patch grid,
    resized bicubically to ``new_grid`` (1 + h*w, C); unchanged when the grids agree."""
    if tuple(grid) == tuple(new_grid):
        return positions
    cls, patches = positions[:1], positions[1:]
    patches = patches.reshape(1, grid[0], grid[1], -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches.float(), size=tuple(new_grid), mode='bicubic',
                            align_corners=False).to(positions.dtype)
    return torch.cat([cls, patches.flatten(2)[0].T], dim=0)


def open_clip_vit_dense(visual: VisionTransformer, pixels: Tensor) -> DenseFeatures:
    """MaskCLIP embeddings of an open_clip ViT tower for normalised pixels (B, 3, H, W),
    H and W multiples of the patch size: (B, D, H/p, W/p)."""
    if visual.attn_pool is not None or visual.proj is None:
        raise ValueError('MaskCLIP dense embeddings need a ViT tower that projects its '
                         'LayerNorm-ed tokens (open_clip CLIP); this tower pools with '
                         'attention or has no projection (CoCa-style).')
    last = visual.transformer.resblocks[-1]
    if not isinstance(getattr(last, 'attn', None), nn.MultiheadAttention) \
            or not last.attn._qkv_same_embed_dim:
        raise ValueError(f'MaskCLIP dense embeddings read the value projection of '
                         f'nn.MultiheadAttention; the last block of this tower is a '
                         f'{type(last).__name__} (qk-norm / scaled-cosine variants are not '
                         'supported).')
    x = visual.conv1(pixels)
    grid = tuple(x.shape[-2:])
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    positions = resize_positions(visual.positional_embedding, visual.grid_size, grid)
    x = visual.ln_pre(torch.cat([cls, x], dim=1) + positions.to(x.dtype))
    transformer = visual.transformer
    if not transformer.batch_first:
        x = x.transpose(0, 1)
    for block in transformer.resblocks[:-1]:
        x = block(x)
    if not transformer.batch_first:
        x = x.transpose(0, 1)
    normed = last.ln_1(x)
    _, key_weight, value_weight = last.attn.in_proj_weight.chunk(3)
    bias = last.attn.in_proj_bias
    _, key_bias, value_bias = bias.chunk(3) if bias is not None else (None, None, None)
    keys = F.linear(normed, key_weight, key_bias)
    x = x + last.ls_1(last.attn.out_proj(F.linear(normed, value_weight, value_bias)))
    x = x + last.ls_2(last.mlp(last.ln_2(x)))
    embeddings = visual.ln_post(x[:, 1:]) @ visual.proj
    return DenseFeatures(_to_map(embeddings, grid), _to_map(keys[:, 1:], grid))


def open_clip_resnet_dense(visual: ModifiedResNet, pixels: Tensor) -> DenseFeatures:
    """MaskCLIP embeddings of an open_clip CLIP ResNet for normalised pixels (B, 3, H, W),
    H and W multiples of 32: (B, D, H/32, W/32)."""
    x = visual.stem(pixels)
    for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        x = stage(x)
    x = x.permute(0, 2, 3, 1)  # (B, h, w, C)
    pool = visual.attnpool
    embeddings = pool.c_proj(pool.v_proj(x))
    return DenseFeatures(embeddings.permute(0, 3, 1, 2), pool.k_proj(x).permute(0, 3, 1, 2))


def hf_clip_vit_dense(vision_model: nn.Module, projection: nn.Module,
                      pixels: Tensor) -> DenseFeatures:
    """MaskCLIP embeddings of a transformers CLIP vision tower (``CLIPModel.vision_model``
    and ``CLIPModel.visual_projection``) for normalised pixels (B, 3, H, W), H and W
    multiples of the patch size: (B, D, H/p, W/p)."""
    patch = vision_model.config.patch_size
    grid = (pixels.shape[-2] // patch, pixels.shape[-1] // patch)
    x = vision_model.embeddings(pixels, interpolate_pos_encoding=True)
    x = vision_model.pre_layrnorm(x)
    layers = vision_model.encoder.layers
    for layer in layers[:-1]:
        x = layer(x, None)
    last = layers[-1]
    normed = last.layer_norm1(x)
    attention = last.self_attn
    keys = attention.k_proj(normed)
    x = x + attention.out_proj(attention.v_proj(normed))
    x = x + last.mlp(last.layer_norm2(x))
    embeddings = projection(vision_model.post_layernorm(x[:, 1:]))
    return DenseFeatures(_to_map(embeddings, grid), _to_map(keys[:, 1:], grid))


# open_clip image towers with a dense recipe: (stride in px, dense function)
OPEN_CLIP_DENSE: Dict[Type[nn.Module], Tuple[Callable[[nn.Module], int], Callable]] = {
    VisionTransformer: (lambda visual: visual.patch_size[0], open_clip_vit_dense),
    ModifiedResNet: (lambda visual: 32, open_clip_resnet_dense),
}


def open_clip_dense_recipe(visual: nn.Module) -> Tuple[int, Callable[[Tensor], DenseFeatures]]:
    """(stride in px, function of normalised pixels) giving the dense embeddings of an
    open_clip image tower; a clear error for towers without a recipe."""
    recipe = OPEN_CLIP_DENSE.get(type(visual))
    if recipe is None:
        raise ValueError(
            f'No dense (MaskCLIP) recipe for an open_clip {type(visual).__name__} image tower: '
            'encode_dense supports open_clip VisionTransformer and ModifiedResNet towers.')
    stride, dense = recipe
    if isinstance(visual, VisionTransformer) and visual.patch_size[0] != visual.patch_size[1]:
        raise ValueError(f'encode_dense needs square patches, got {visual.patch_size}.')
    return stride(visual), lambda pixels: dense(visual, pixels)
