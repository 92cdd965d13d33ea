"""How a student asks its teacher for dense embeddings (B, D, h, w) of its images.

- :class:`EncodeDense`: the teacher's own dense path, ``Teacher.encode_dense`` (MaskCLIP for
  CLIP ViTs and ResNets, patch / grid tokens for vlkd VLP recipes). One forward pass per
  image; the quality depends on the tower reading single locations well, which large CLIPs
  do and towers trained only on small whole-image inputs may not.
- :class:`SlidingWindowDense`: the teacher's image embedding of a window around every cell
  of a regular grid (``Teacher.encode_regions`` on the window boxes): what the teacher was
  trained on (whole crops), for any teacher, at the price of one forward pass per cell.

Both are registered (``dict(type='SlidingWindowDense', window=40, stride=16)``) and called
as ``view(teacher, images, return_keys=False)`` with float RGB images (B, 3, H, W) in
0..255; they return L2-normalised embeddings and the attention keys (or None).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.teachers import Teacher


@MODELS.register_module()
class EncodeDense:
    """``Teacher.encode_dense`` at an input size.

    Args:
        size: input side (int) or (H, W) in px the images are resized to for the teacher
            (rounded to its stride); None: the images' size.
    """

    def __init__(self, size: Union[None, int, Sequence[int]] = None) -> None:
        self.size = size

    def __call__(self, teacher: Teacher, images: Tensor,
                 return_keys: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        if return_keys:
            return teacher.encode_dense(images, self.size, return_keys=True)
        return teacher.encode_dense(images, self.size), None

    def __repr__(self) -> str:
        return f'EncodeDense(size={self.size})'


@MODELS.register_module()
class SlidingWindowDense:
    """Window embeddings on a grid: cell (i, j) of the ``ceil(H / stride) x ceil(W /
    stride)`` map is the teacher's embedding of the ``window`` x ``window`` px square
    centred on the cell's centre ((j + 0.5) * stride, (i + 0.5) * stride); parts outside
    the image are black (RoIAlign's zeros).

    Args:
        window: side of the windows in px of the input images.
        stride: cell size in px.
    """

    def __init__(self, window: int = 40, stride: int = 16) -> None:
        if window <= 0 or stride <= 0:
            raise ValueError(f'window and stride must be positive, got {window}, {stride}')
        self.window = window
        self.stride = stride

    def grid_boxes(self, height: int, width: int) -> Tuple[Tensor, Tuple[int, int]]:
        """(h*w, 4) x1 y1 x2 y2 window boxes in row-major cell order, and (h, w)."""
        rows, cols = math.ceil(height / self.stride), math.ceil(width / self.stride)
        ys = (torch.arange(rows, dtype=torch.float32) + 0.5) * self.stride
        xs = (torch.arange(cols, dtype=torch.float32) + 0.5) * self.stride
        cy, cx = torch.meshgrid(ys, xs, indexing='ij')
        half = self.window / 2
        boxes = torch.stack([cx - half, cy - half, cx + half, cy + half], dim=-1)
        return boxes.reshape(-1, 4), (rows, cols)

    @torch.no_grad()
    def __call__(self, teacher: Teacher, images: Tensor,
                 return_keys: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        if return_keys:
            raise ValueError('SlidingWindowDense has no attention keys: key smoothing needs '
                             "dense=dict(type='EncodeDense').")
        boxes, (rows, cols) = self.grid_boxes(*images.shape[-2:])
        embeddings = teacher.encode_regions(images, [boxes] * len(images))
        dense = torch.stack(embeddings).view(len(images), rows, cols, -1)
        return dense.permute(0, 3, 1, 2).contiguous(), None

    def __repr__(self) -> str:
        return f'SlidingWindowDense(window={self.window}, stride={self.stride})'


def build_dense_view(cfg) -> Union[EncodeDense, SlidingWindowDense]:
    """A dense view from its config dict (default: ``EncodeDense()``)."""
    if cfg is None:
        return EncodeDense()
    if not isinstance(cfg, dict):
        return cfg
    return MODELS.build({'_scope_': 'vlkd', **cfg})
