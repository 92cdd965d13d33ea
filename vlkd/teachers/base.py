"""The Teacher interface: frozen image and text towers that students ask for embeddings.

Students call only these methods, never open_clip or transformers directly, so any
vision-language model behind an adapter can teach any student. Images are float RGB in
0..255, (B, 3, H, W); resizing and the tower's mean / std normalisation happen inside. All
embeddings are L2-normalised (per row, or per location for dense maps), computed without
gradient, in eval mode, on the device of the teacher (``teacher.to(device)``).

Text
    ``encode_text(texts) -> (N, D)``
    ``encode_class_names(names, templates=None) -> (C, D)``: prompt-ensembled (mean of the
    normalised template embeddings, normalised), cached on disk by teacher fingerprint.
    ``load_class_embeddings(path, classes=None) -> (C, D)``: a class-embedding file
    (:mod:`.embedding_file`) checked against this teacher (dimension, fingerprint) and
    against ``classes`` (rows returned in that order); a mismatch is a
    :class:`~vlkd.teachers.embedding_file.ClassEmbeddingFileError` naming it.
Images and regions
    ``encode_image(images) -> (B, D)``: images of any size, resized to the tower's input.
    ``encode_regions(images, boxes, scales=(1.0,)) -> [(Ni, D)]``: box crops (RoIAlign
    to the tower's input), one embedding per box; ``scales`` enlarge the boxes and the
    embeddings of the scales are summed and normalised (ViLD: 1.0 and 1.5).
    ``encode_regions_dense(images, boxes, scales=(1.0,), size=None) -> [(Ni, D)]``: the
    fast path: each box's mean over the dense map (RoIAlign, one bin), normalised.
Dense
    ``encode_dense(images, size=None, return_keys=False) -> (B, D, h, w)``, or
    ``(embeddings, keys (B, K, h, w))``: per-location embeddings (MaskCLIP for CLIP ViTs
    and ResNets, see :mod:`.dense`; patch / grid tokens through the joint-space projection
    for vlkd VLP recipes). ``size`` (int or (H, W)) is the input size in px, default the
    images' own; it is rounded to what the tower takes (multiples of its stride; VLP
    recipes: their fixed input size). A teacher without a dense recipe raises ValueError.
    ``dense_scores(images, class_embeddings, prompt_denoising=None, key_smoothing=None,
    logit_scale=100.0, size=None) -> (B, C, h, w)``: cosine similarities to the classes,
    with MaskCLIP's optional refinements (thresholds; :mod:`.dense_scores`).
Identity and construction
    ``fingerprint``: sha256 of adapter identity, preprocessing and weights (cache keys).
    ``image_size``, ``embed_dim``, ``templates``: the tower's input side, D, the default
    templates. ``Teacher.from_zoo(name, ...)``: the teacher of a model-zoo entry, downloaded
    and verified (:mod:`.zoo_teacher`). ``build_teacher(cfg)``: from a config dict.
"""
import hashlib
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

from vlkd.registry import MODELS
from .class_names import check_class_names
from .dense import DenseFeatures
from . import dense_scores as refinements
from .embedding_file import load_class_embeddings
from .templates import Templates, prompt_ensemble, resolve_templates
from .text_cache import TextEmbeddingCache


class Teacher(nn.Module):
    """Base class of teacher adapters.

    Adapters call ``super().__init__(...)``, register their model, call :meth:`freeze`,
    and implement :meth:`_text_features`, :meth:`_image_features` and :meth:`_identity`;
    adapters with dense embeddings also :meth:`_dense_input_size` and
    :meth:`_dense_features`.

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

    def _dense_input_size(self, height: int, width: int) -> Tuple[int, int]:
        """The input size (H, W) in px the dense path uses for a requested size."""
        raise ValueError(f'{type(self).__name__} has no dense embeddings: encode_dense '
                         'supports CLIP ViT and ResNet towers (open_clip, transformers, vlkd '
                         'CLIP checkpoints) and vlkd VLP recipes with a patch projection.')

    def _dense_features(self, pixels: Tensor) -> DenseFeatures:
        """Dense embeddings (and keys) of normalised pixels (B, 3, H, W) of a size
        returned by :meth:`_dense_input_size`."""
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
            scales: each box is enlarged about its centre by each scale, clipped to the
                image and cropped (``roi_align`` straight to S x S); the normalised
                embeddings of the scales are summed and normalised again (ViLD: 1.0 and
                1.5). Clipping keeps the crops to image content: the part of an enlarged
                box outside the image would otherwise be black, and the black padding of a
                box at the border is a shape of its own to the teacher.
        """
        images = self._check_images(images)
        rois = self._rois(images, boxes, scales)
        height, width = images.shape[-2:]
        summed = images.new_zeros(len(rois), self.embed_dim)
        for scale in scales:
            scaled = torch.cat([rois[:, :1],
                                _clip_boxes(_scale_boxes(rois[:, 1:], scale), height, width)],
                               dim=1)
            for start in range(0, len(rois), self.region_batch_size):
                crops = roi_align(images, scaled[start:start + self.region_batch_size],
                                  output_size=self.image_size, spatial_scale=1.0,
                                  sampling_ratio=-1, aligned=True)
                summed[start:start + len(crops)] += self._embed_pixels(crops)
        return list(F.normalize(summed, dim=-1).split([len(b) for b in boxes]))

    @torch.no_grad()
    def encode_dense(self, images: Tensor, size: Union[None, int, Sequence[int]] = None,
                     return_keys: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Per-location embeddings (B, D, h, w) of float RGB images (B, 3, H, W) in 0..255,
        L2-normalised at every location; with ``return_keys`` also the keys (B, K, h, w) of
        the last attention (for :func:`~vlkd.teachers.dense_scores.key_smoothing`).

        Args:
            size: input side (int) or (H, W) in px the images are resized to; None keeps
                their size. Rounded to the tower's stride (or its fixed input size).
        """
        images = self._check_images(images)
        requested = tuple(images.shape[-2:]) if size is None else _pair(size)
        height, width = self._dense_input_size(*requested)
        if tuple(images.shape[-2:]) != (height, width):
            images = F.interpolate(images, size=(height, width), mode='bilinear',
                                   align_corners=False, antialias=True)
        embeddings, keys = [], []
        for chunk in images.split(self.region_batch_size):
            features = self._dense_features((chunk - self.pixel_mean) / self.pixel_std)
            embeddings.append(F.normalize(features.embeddings.float(), dim=1))
            if return_keys:
                if features.keys is None:
                    raise ValueError(f'{type(self).__name__} has no attention keys for key '
                                     'smoothing.')
                keys.append(features.keys.float())
        if return_keys:
            return torch.cat(embeddings), torch.cat(keys)
        return torch.cat(embeddings)

    @torch.no_grad()
    def encode_regions_dense(self, images: Tensor, boxes: Sequence[Tensor],
                             scales: Sequence[float] = (1.0,),
                             size: Union[None, int, Sequence[int]] = None) -> List[Tensor]:
        """L2-normalised region embeddings pooled from :meth:`encode_dense`, one (Ni, D)
        tensor per image: ViLD's fast alternative to :meth:`encode_regions`'s crops.

        Each box's embedding is the mean of the dense map over the box: RoIAlign with one
        output bin and adaptive sampling, i.e. one bilinear sample per covered cell (a box
        on cell borders averages exactly its cells). ``boxes`` and ``scales`` (enlarged
        boxes clipped to the image) as in :meth:`encode_regions`; ``size`` as in
        :meth:`encode_dense`.
        """
        images = self._check_images(images)
        rois = self._rois(images, boxes, scales)
        height, width = images.shape[-2:]
        dense = self.encode_dense(images, size)
        # boxes from image pixels to dense-map cells (the map covers the whole image)
        cell = rois.new_tensor([dense.shape[-1] / images.shape[-1],
                                dense.shape[-2] / images.shape[-2]]).repeat(2)
        summed = dense.new_zeros(len(rois), self.embed_dim)
        for scale in scales:
            scaled = _clip_boxes(_scale_boxes(rois[:, 1:], scale), height, width)
            scaled = torch.cat([rois[:, :1], scaled * cell], dim=1)
            pooled = roi_align(dense, scaled, output_size=1, spatial_scale=1.0,
                               sampling_ratio=-1, aligned=True)
            summed += F.normalize(pooled.flatten(1), dim=-1)
        return list(F.normalize(summed, dim=-1).split([len(b) for b in boxes]))

    @torch.no_grad()
    def dense_scores(self, images: Tensor, class_embeddings: Tensor,
                     prompt_denoising: Optional[float] = None,
                     key_smoothing: Optional[float] = None, logit_scale: float = 100.0,
                     size: Union[None, int, Sequence[int]] = None) -> Tensor:
        """Zero-shot dense class scores (B, C, h, w): cosine similarities of
        :meth:`encode_dense` to ``class_embeddings`` (C, D), refined as MaskCLIP does when
        thresholds are given (see :mod:`.dense_scores`): ``prompt_denoising`` sets the
        classes absent from an image to -100; ``key_smoothing`` returns class
        probabilities (softmax of ``logit_scale * scores``) smoothed over similar keys."""
        if key_smoothing is not None:
            dense, keys = self.encode_dense(images, size, return_keys=True)
        else:
            dense = self.encode_dense(images, size)
        scores = refinements.dense_class_scores(dense, class_embeddings.to(dense.device))
        if prompt_denoising is not None:
            scores = refinements.prompt_denoising(scores, prompt_denoising, logit_scale)
        if key_smoothing is not None:
            scores = refinements.key_smoothing(scores, keys, key_smoothing, logit_scale)
        return scores

    @torch.no_grad()
    def encode_class_names(self, names: Sequence[str],
                           templates: Optional[Templates] = None) -> Tensor:
        """Prompt-ensembled class embeddings (C, D): per name, the mean of the normalised
        embeddings of its templates, normalised again. ``templates``: a set name, a list,
        or None for the teacher's default. Cached on disk (see :mod:`.text_cache`)."""
        names = check_class_names(names, 'class list of encode_class_names')
        templates = self.templates if templates is None else resolve_templates(templates)
        cache = TextEmbeddingCache()
        key = cache.key(self.fingerprint, names, templates)
        embeddings = cache.load(key, len(names), self.embed_dim)
        if embeddings is None:
            embeddings = prompt_ensemble(self.encode_text, names, templates).cpu()
            cache.save(key, embeddings)
        return embeddings.to(self.device)

    def load_class_embeddings(self, path, classes: Optional[Sequence[str]] = None) -> Tensor:
        """Class embeddings (C, D) from a class-embedding file made with this teacher
        (``tools/embed_text.py``), on the teacher's device; rows in the order of
        ``classes`` if given. Raises ClassEmbeddingFileError when the file was made by
        another teacher, has another dimension, or holds other classes than ``classes``."""
        stored = load_class_embeddings(path, classes=classes, embed_dim=self.embed_dim,
                                       teacher_fingerprint=self.fingerprint)
        return stored['embeddings'].to(self.device)

    @classmethod
    def from_zoo(cls, name: str, **kwargs) -> 'Teacher':
        """The teacher of model-zoo entry ``name`` (or ``zoo://name``): its file is
        downloaded if needed and checked against the manifest's sha256, then built as its
        ``load`` entry says; see :func:`vlkd.teachers.zoo_teacher.teacher_from_zoo` for the
        keyword arguments."""
        from .zoo_teacher import teacher_from_zoo  # the zoo loaders import the adapters
        return teacher_from_zoo(name, **kwargs)

    # -- helpers -----------------------------------------------------------------------
    def _rois(self, images: Tensor, boxes: Sequence[Tensor], scales: Sequence[float]) -> Tensor:
        """(N, 5) RoIAlign boxes: image index, x1 y1 x2 y2, of every image's boxes."""
        if len(boxes) != images.shape[0]:
            raise ValueError(f'{images.shape[0]} images but {len(boxes)} box tensors: give '
                             'one (Ni, 4) tensor per image.')
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
        return torch.cat(rois)

    def _check_images(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images)
            raise ValueError(f'images must be a (B, 3, H, W) RGB tensor, got {shape}')
        return images.to(self.device, torch.float32)

    def _embed_pixels(self, pixels: Tensor) -> Tensor:
        """Normalised embeddings (B, D) of 0..255 RGB pixels (B, 3, S, S)."""
        features = self._image_features((pixels - self.pixel_mean) / self.pixel_std)
        return F.normalize(features.float(), dim=-1)


def _pair(size) -> Tuple[int, int]:
    """(H, W) from an int or a pair of positive ints."""
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(f'size must be a positive int or (H, W), got {size!r}')
    return pair


def stride_multiple(height: int, width: int, stride: int) -> Tuple[int, int]:
    """(H, W) rounded to the nearest multiples of ``stride`` (at least one stride)."""
    return tuple(max(stride, int(round(side / stride)) * stride) for side in (height, width))


def _scale_boxes(boxes: Tensor, scale: float) -> Tensor:
    """xyxy boxes (N, 4) enlarged by ``scale`` about their centres."""
    if scale == 1.0:
        return boxes
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    half_sizes = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return torch.cat([centers - half_sizes, centers + half_sizes], dim=1)


def _clip_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """xyxy boxes (N, 4) clipped to an image of ``height`` x ``width`` px."""
    limits = boxes.new_tensor([width, height, width, height])
    return torch.minimum(boxes.clamp(min=0), limits)


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
