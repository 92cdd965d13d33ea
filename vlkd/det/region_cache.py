"""On-disk cache of proposal boxes and the teacher's embeddings of their crops.

ViLD-image distils the teacher's image embeddings of cropped proposals into the student's
region embeddings. Cropping and encoding every proposal is far more expensive than a student
step, so it is done once, before training, and stored here:

```
CACHE_DIR/meta.json         teacher fingerprint, embedding dim, proposal source, counts
CACHE_DIR/index.json        {img_id: [start, count]}
CACHE_DIR/boxes.npy         (N, 4) float32, xyxy in ORIGINAL image pixels
CACHE_DIR/embeddings.npy    (N, D) float16, L2-normalised teacher embeddings
```
Arrays are memory-mapped when read, so every data-loader worker and process shares one copy.
A cache is complete only when ``meta.json`` exists (it is written last, after the arrays are
renamed into place); an incomplete directory is rebuilt, never read.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

CACHE_VERSION = 1


class RegionCacheMismatch(RuntimeError):
    """The cache was built for another teacher or proposal source."""


class RegionEmbeddingCache:
    """Read-only view of a finished cache directory."""

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)
        meta_file = self.cache_dir / 'meta.json'
        if not meta_file.is_file():
            raise FileNotFoundError(
                f'No finished region-embedding cache at {self.cache_dir} (meta.json missing). '
                'Build it with tools/embed_proposals.py or let the training hook build it.')
        self.meta = json.loads(meta_file.read_text())
        index = json.loads((self.cache_dir / 'index.json').read_text())
        self.index: Dict[int, Tuple[int, int]] = {int(k): tuple(v) for k, v in index.items()}
        self.boxes = np.load(self.cache_dir / 'boxes.npy', mmap_mode='r')
        self.embeddings = np.load(self.cache_dir / 'embeddings.npy', mmap_mode='r')

    @property
    def teacher_fingerprint(self) -> str:
        return self.meta['teacher_fingerprint']

    def check(self, teacher_fingerprint: Optional[str] = None,
              proposal_source: Optional[str] = None) -> None:
        """Raise :class:`RegionCacheMismatch` if the cache was made differently."""
        if teacher_fingerprint is not None and teacher_fingerprint != self.teacher_fingerprint:
            raise RegionCacheMismatch(
                f'The region cache {self.cache_dir} was built with teacher '
                f'{self.teacher_fingerprint[:12]}, but the config uses teacher '
                f'{teacher_fingerprint[:12]}. Delete the directory to rebuild it, or point '
                'region_cache at a cache made with this teacher.')
        if proposal_source is not None and proposal_source != self.meta['proposal_source']:
            raise RegionCacheMismatch(
                f'The region cache {self.cache_dir} holds proposals from '
                f'{self.meta["proposal_source"]!r}, not {proposal_source!r}.')

    def __contains__(self, img_id: int) -> bool:
        return int(img_id) in self.index

    def __len__(self) -> int:
        return len(self.index)

    def get(self, img_id: int) -> Tuple[Tensor, Tensor]:
        """Boxes (K, 4) in original pixels and embeddings (K, D), both float32 tensors."""
        if int(img_id) not in self.index:
            raise KeyError(f'Image id {img_id} is not in the region cache {self.cache_dir}; '
                           'the cache was built for another dataset split.')
        start, count = self.index[int(img_id)]
        boxes = torch.from_numpy(np.asarray(self.boxes[start:start + count], np.float32))
        embeddings = torch.from_numpy(
            np.asarray(self.embeddings[start:start + count], np.float32))
        return boxes, embeddings


def write_region_cache(cache_dir, records: Iterable[Tuple[int, np.ndarray, np.ndarray]],
                       teacher_fingerprint: str, proposal_source: str,
                       extra_meta: Optional[dict] = None) -> RegionEmbeddingCache:
    """Write ``(img_id, boxes (K,4), embeddings (K,D))`` records as a cache, atomically.

    The arrays are assembled in a temporary directory next to ``cache_dir`` that replaces
    it only once complete, so an interrupted build leaves no half-written cache behind.
    """
    cache_dir = Path(cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f'.{cache_dir.name}-', dir=cache_dir.parent))
    try:
        index, all_boxes, all_embeddings, start = {}, [], [], 0
        for img_id, boxes, embeddings in records:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            embeddings = np.asarray(embeddings, np.float32)
            if len(boxes) != len(embeddings):
                raise ValueError(f'image {img_id}: {len(boxes)} boxes but '
                                 f'{len(embeddings)} embeddings')
            index[int(img_id)] = [start, len(boxes)]
            start += len(boxes)
            all_boxes.append(boxes)
            all_embeddings.append(embeddings)
        dim = all_embeddings[0].shape[1] if all_embeddings else 0
        np.save(tmp_dir / 'boxes.npy', np.concatenate(all_boxes) if all_boxes
                else np.zeros((0, 4), np.float32))
        np.save(tmp_dir / 'embeddings.npy',
                (np.concatenate(all_embeddings) if all_embeddings
                 else np.zeros((0, dim), np.float32)).astype(np.float16))
        (tmp_dir / 'index.json').write_text(json.dumps(index))
        meta = dict(version=CACHE_VERSION, teacher_fingerprint=teacher_fingerprint,
                    proposal_source=proposal_source, num_images=len(index),
                    num_regions=start, embed_dim=int(dim), **(extra_meta or {}))
        (tmp_dir / 'meta.json').write_text(json.dumps(meta, indent=2))
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        os.replace(tmp_dir, cache_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return RegionEmbeddingCache(cache_dir)


def map_boxes_to_input(boxes: Tensor, img_meta: dict) -> Tensor:
    """Map boxes (K, 4) from original image pixels into the augmented input image.

    Uses the ``homography_matrix`` that mmdet's geometric transforms (Resize, RandomFlip,
    RandomCrop, ...) record; add it to ``PackDetInputs(meta_keys=...)``. The four corners are
    projected and the result is the box around them, clipped to ``img_shape``.
    """
    if 'homography_matrix' not in img_meta:
        raise KeyError(
            "Region distillation needs 'homography_matrix' in the image meta: add it to "
            "PackDetInputs(meta_keys=(..., 'homography_matrix')) in the training pipeline.")
    if len(boxes) == 0:
        return boxes
    matrix = torch.as_tensor(np.asarray(img_meta['homography_matrix']), dtype=boxes.dtype,
                             device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack([torch.stack([x1, y1], -1), torch.stack([x2, y1], -1),
                           torch.stack([x1, y2], -1), torch.stack([x2, y2], -1)], 1)  # (K,4,2)
    ones = corners.new_ones(corners.shape[:2] + (1,))
    projected = torch.cat([corners, ones], -1) @ matrix.t()
    projected = projected[..., :2] / projected[..., 2:3]
    height, width = img_meta['img_shape'][:2]
    x = projected[..., 0].clamp(0, width)
    y = projected[..., 1].clamp(0, height)
    return torch.stack([x.min(1).values, y.min(1).values, x.max(1).values, y.max(1).values], -1)
