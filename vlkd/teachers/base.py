"""The Teacher interface: frozen image and text towers that students ask for embeddings.

Students call only these methods, never open_clip or transformers directly, so any
vision-language model behind an adapter can teach any student:

- ``encode_text(texts)`` (N, D); ``encode_image(images)`` (B, D) for images of any size;
- ``encode_regions(images, boxes, scales)``: one (Ni, D) per image, from box crops;
- ``encode_class_names(names, templates)`` (C, D): prompt-ensembled, cached on disk.

All outputs are L2-normalised, computed without gradient, in eval mode, on the device of
the teacher. Images are float RGB in 0..255, (B, 3, H, W); resizing to the tower's input
size and its mean / std normalisation happen inside.
"""
import hashlib
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from vlkd.registry import MODELS
from .templates import Templates, prompt_ensemble, resolve_templates
from .text_cache import TextEmbeddingCache


class Teacher(nn.Module):
    """Base class of teacher adapters.

    Adapters call ``super().__init__(...)``, register their model, call :meth:`freeze`,
    and implement :meth:`_text_features`, :meth:`_image_features` and :meth:`_identity`.

    Args:
        image_size: input side (px) of the image tower.
        embed_dim: dimension D of the joint embedding space.
        pixel_mean, pixel_std: per-channel RGB normalisation, 0..255 scale.
        templates: default templates of :meth:`encode_class_names` (a set name of
            :mod:`vlkd.teachers.templates` or a list).
        region_batch_size: crops (or images) per forward pass of the image tower.
    """

    def __init__(self, image_size: int, embed_dim: int, pixel_mean: Sequence[float],
                 pixel_std: Sequence[float], templates: Templates = 'photo',
                 region_batch_size: int = 256):
        super().__init__()
        self.image_size = int(image_size)
        self.embed_dim = int(embed_dim)
        self.register_buffer('pixel_mean', torch.tensor(pixel_mean, dtype=torch.float32)
                             .view(1, 3, 1, 1), persistent=False)
        self.register_buffer('pixel_std', torch.tensor(pixel_std, dtype=torch.float32)
                             .view(1, 3, 1, 1), persistent=False)
        self.templates = resolve_templates(templates)
        if region_batch_size < 1:
            raise ValueError(f'region_batch_size must be >= 1, got {region_batch_size}')
        self.region_batch_size = region_batch_size
        self._fingerprint: Optional[str] = None

    # -- implemented by adapters -------------------------------------------------------
    def _text_features(self, texts: List[str]) -> Tensor:
        """Embeddings (N, D), any norm, of N strings."""
        raise NotImplementedError

    def _image_features(self, pixels: Tensor) -> Tensor:
        """Embeddings (B, D), any norm, of normalised pixels (B, 3, S, S)."""
        raise NotImplementedError

    def _identity(self) -> str:
        """What, besides the weights, defines the embeddings (adapter, architecture,
        tokenizer); part of the fingerprint."""
        raise NotImplementedError

    # -- frozen, eval-only module ------------------------------------------------------
    def freeze(self) -> 'Teacher':
        """No gradients, eval mode (for good: :meth:`train` keeps eval mode)."""
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> 'Teacher':
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def fingerprint(self) -> str:
        """sha256 of the adapter identity, the preprocessing and every weight (computed
        once: a teacher is frozen)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(self._identity().encode('utf-8'))
            digest.update(f'|size={self.image_size}|mean={self.pixel_mean.flatten().tolist()}'
                          f'|std={self.pixel_std.flatten().tolist()}'.encode('utf-8'))
            for name, tensor in sorted(self.state_dict().items()):
                tensor = tensor.detach().cpu().contiguous().reshape(-1)
                digest.update(f'|{name}|{tensor.dtype}|{tensor.numel()}|'.encode('utf-8'))
                digest.update(tensor.view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- the interface -----------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised embeddings (N, D) of N strings."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f'encode_text takes a list of strings, got {texts!r:.80}')
        return F.normalize(self._text_features(list(texts)).float(), dim=-1)

    @torch.no_grad()
    def encode_image(self, images: Tensor) -> Tensor:
        """L2-normalised embeddings (B, D) of float RGB images (B, 3, H, W) in 0..255."""
        images = self._check_images(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode='bilinear', align_corners=False, antialias=True)
        return torch.cat([self._embed_pixels(chunk)
                          for chunk in images.split(self.region_batch_size)])

    @torch.no_grad()
    def encode_regions(self, images: Tensor, boxes: Sequence[Tensor],
                       scales: Sequence[float] = (1.0,)) -> List[Tensor]:
        """L2-normalised embeddings of box crops, one (Ni, D) tensor per image.

        Args:
            images: float RGB (B, 3, H, W) in 0..255.
            boxes: B tensors (Ni, 4), x1 y1 x2 y2 in pixels of ``images``.
            scales: each box is enlarged about its centre by each scale and cropped
                (``roi_align`` straight to S x S); the normalised embeddings of the scales
                are summed and normalised again (ViLD: 1.0 and 1.5).
        """
        images = self._check_images(images)
        if len(boxes) != images.shape[0]:
            raise ValueError(f'encode_regions got {images.shape[0]} images but '
                             f'{len(boxes)} box tensors: give one (Ni, 4) tensor per image.')
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f'scales must be positive numbers, got {scales!r}')
        rois = []
        for index, image_boxes in enumerate(boxes):
            image_boxes = torch.as_tensor(image_boxes, dtype=images.dtype, device=self.device)
            if image_boxes.dim() != 2 or image_boxes.shape[1] != 4:
                raise ValueError(f'boxes[{index}] must be (N, 4) x1 y1 x2 y2, got shape '
                                 f'{tuple(image_boxes.shape)}')
            rois.append(torch.cat([image_boxes.new_full((len(image_boxes), 1), index),
                                   image_boxes], dim=1))
        rois = torch.cat(rois)
        summed = images.new_zeros(len(rois), self.embed_dim)
        for scale in scales:
            scaled = torch.cat([rois[:, :1], _scale_boxes(rois[:, 1:], scale)], dim=1)
            for start in range(0, len(rois), self.region_batch_size):
                crops = roi_align(images, scaled[start:start + self.region_batch_size],
                                  output_size=self.image_size, spatial_scale=1.0,
                                  sampling_ratio=-1, aligned=True)
                summed[start:start + len(crops)] += self._embed_pixels(crops)
        return list(F.normalize(summed, dim=-1).split([len(b) for b in boxes]))

    @torch.no_grad()
    def encode_class_names(self, names: Sequence[str],
                           templates: Optional[Templates] = None) -> Tensor:
        """Prompt-ensembled class embeddings (C, D): per name, the mean of the normalised
        embeddings of its templates, normalised again. ``templates``: a set name, a list,
        or None for the teacher's default. Cached on disk (see :mod:`.text_cache`)."""
        names = list(names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f'encode_class_names needs non-empty class names, got {names!r}')
        templates = self.templates if templates is None else resolve_templates(templates)
        cache = TextEmbeddingCache()
        key = cache.key(self.fingerprint, names, templates)
        embeddings = cache.load(key, len(names), self.embed_dim)
        if embeddings is None:
            embeddings = prompt_ensemble(self.encode_text, names, templates).cpu()
            cache.save(key, embeddings)
        return embeddings.to(self.device)

    # -- helpers -----------------------------------------------------------------------
    def _check_images(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images)
            raise ValueError(f'images must be a (B, 3, H, W) RGB tensor, got {shape}')
        return images.to(self.device, torch.float32)

    def _embed_pixels(self, pixels: Tensor) -> Tensor:
        """Normalised embeddings (B, D) of 0..255 RGB pixels (B, 3, S, S)."""
        features = self._image_features((pixels - self.pixel_mean) / self.pixel_std)
        return F.normalize(features.float(), dim=-1)


def _scale_boxes(boxes: Tensor, scale: float) -> Tensor:
    """xyxy boxes (N, 4) enlarged by ``scale`` about their centres."""
    if scale == 1.0:
        return boxes
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    half_sizes = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return torch.cat([centers - half_sizes, centers + half_sizes], dim=1)


def build_teacher(cfg) -> Teacher:
    """A teacher from a config dict (``dict(type='VLKDTeacher', checkpoint=...)``), or
    ``cfg`` itself if it is already a :class:`Teacher`."""
    if isinstance(cfg, Teacher):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError('A teacher is a Teacher or a config dict with a type, such as '
                        "dict(type='VLKDTeacher', checkpoint='work_dirs/clip_shapes_tiny'); "
                        f'got {cfg!r}')
    # Teachers are built in vlkd's scope also when asked from inside an mmdet/mmseg model.
    teacher = MODELS.build({'_scope_': 'vlkd', **cfg})
    if not isinstance(teacher, Teacher):
        raise TypeError(f"Teacher config type {cfg['type']!r} built a "
                        f'{type(teacher).__name__}, which is not a vlkd Teacher.')
    return teacher
