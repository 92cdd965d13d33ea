"""On-disk cache of proposal boxes and the teacher's embeddings of them.

ViLD-image distils the teacher's image embeddings of proposals into the student's region
embeddings. Embedding every proposal with the teacher is far more expensive than a student
step, so it is done once, before training, and stored here for every later run and every
method that distils region embeddings:

```
CACHE_DIR/meta.json                   the cache key (teacher fingerprint, proposal source,
                                      region source, scales, proposals per image), counts
CACHE_DIR/index.json                  {img_id: [shard, start, count]}
CACHE_DIR/shard-00000-boxes.npy       (N, 4) float32, xyxy in ORIGINAL image pixels
CACHE_DIR/shard-00000-embeddings.npy  (N, D) float16, L2-normalised teacher embeddings
```
Arrays are memory-mapped when read, so every data-loader worker and process shares one copy.

Building is resumable. :class:`RegionCacheWriter` writes a shard of a few hundred images at
a time (arrays written to temporary names and renamed into place) and then records it in
``progress.json``; ``build.json`` holds the key of the build in progress. An interrupted
build is continued from its last recorded shard by the next build with the same key. A cache
is finished only when ``meta.json`` exists (written last); an unfinished directory is never
read. Version-1 caches (one ``boxes.npy`` / ``embeddings.npy`` pair, ``index.json`` of
``[start, count]``) are still read.
"""
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from torch import Tensor

CACHE_VERSION = 3
# Version 3: crops of enlarged boxes are clipped to the image. Earlier crop caches were
# embedded from crops padded with black past the image border: other targets, refused.
CLIPPED_CROPS_VERSION = 3
# What defines a cache's content besides the images; a cache is reusable by any run whose
# key agrees (``proposal_source`` identifies the proposal detector's weights).
KEY_FIELDS = ('teacher_fingerprint', 'proposal_source', 'region_source', 'scales',
              'num_proposals')
# Values that version-1 caches did not record.
V1_DEFAULTS = dict(region_source='crops')
_BUILD_FILES = ('build.json', 'progress.json')


class RegionCacheMismatch(RuntimeError):
    """The cache was built for another teacher, proposal source or setting."""


class UnfinishedRegionCache(FileNotFoundError):
    """The directory holds no finished cache (absent, or a build that did not finish)."""


def cache_key(teacher_fingerprint: str, proposal_source: str, region_source: str = 'crops',
              scales: Sequence[float] = (1.0, 1.5), num_proposals: int = 32) -> dict:
    """The fields that say what a cache holds, in the form stored in ``meta.json``."""
    return dict(teacher_fingerprint=str(teacher_fingerprint),
                proposal_source=str(proposal_source), region_source=str(region_source),
                scales=[float(s) for s in scales], num_proposals=int(num_proposals))


def _write_json(path: Path, content) -> None:
    """Write JSON to ``path`` atomically (temporary file renamed into place)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(content, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_npy(path: Path, array: np.ndarray) -> None:
    """Write a .npy file atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _shard_paths(cache_dir: Path, shard: int) -> Tuple[Path, Path]:
    return (cache_dir / f'shard-{shard:05d}-boxes.npy',
            cache_dir / f'shard-{shard:05d}-embeddings.npy')


class RegionEmbeddingCache:
    """Read-only view of a finished cache directory."""

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)
        meta_file = self.cache_dir / 'meta.json'
        if not meta_file.is_file():
            progress = self.cache_dir / 'progress.json'
            state = ''
            if progress.is_file():
                done = sum(len(s['img_ids']) for s in json.loads(progress.read_text())['shards'])
                state = f' (an unfinished build: {done} images embedded so far)'
            raise UnfinishedRegionCache(
                f'No finished region-embedding cache at {self.cache_dir}{state}. Build or '
                'resume it with `python tools/embed_proposals.py CONFIG`, or let the '
                "training config's BuildRegionCacheHook do it.")
        self.meta = json.loads(meta_file.read_text())
        index = json.loads((self.cache_dir / 'index.json').read_text())
        if self.meta.get('version', 1) == 1:
            self.index: Dict[int, Tuple[int, int, int]] = {
                int(k): (0, v[0], v[1]) for k, v in index.items()}
            self._shard_files = [(self.cache_dir / 'boxes.npy',
                                  self.cache_dir / 'embeddings.npy')]
        else:
            self.index = {int(k): tuple(v) for k, v in index.items()}
            self._shard_files = [_shard_paths(self.cache_dir, shard)
                                 for shard in range(self.meta['num_shards'])]
        self._shards: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    @property
    def teacher_fingerprint(self) -> str:
        return self.meta['teacher_fingerprint']

    @property
    def key(self) -> dict:
        """The cache key (:func:`cache_key` fields); defaults filled in for version 1."""
        return {field: self.meta.get(field, V1_DEFAULTS.get(field)) for field in KEY_FIELDS}

    def check(self, teacher_fingerprint: Optional[str] = None,
              proposal_source: Optional[str] = None, **settings) -> None:
        """Raise :class:`RegionCacheMismatch` naming every given field that differs.

        ``settings``: other :data:`KEY_FIELDS` (``region_source``, ``scales``,
        ``num_proposals``). A version-1 cache recorded its proposal source as a path, so for
        it only the teacher and the settings it stored are compared.
        """
        unknown = set(settings) - set(KEY_FIELDS)
        if unknown:
            raise KeyError(f'Unknown cache key fields {sorted(unknown)}; known: {KEY_FIELDS}.')
        expected = dict(settings, teacher_fingerprint=teacher_fingerprint,
                        proposal_source=proposal_source)
        if self.meta.get('version', 1) == 1:
            expected['proposal_source'] = None
        key = self.key
        if 'scales' in expected and expected['scales'] is not None:
            expected['scales'] = [float(s) for s in expected['scales']]
        differences = [f'{field}: cache has {_short(key[field])}, expected '
                       f'{_short(value)}' for field, value in expected.items()
                       if value is not None and key[field] is not None and key[field] != value]
        version = self.meta.get('version', 1)
        if key['region_source'] == 'crops' and version < CLIPPED_CROPS_VERSION:
            differences.append(f'crops: cache version {version} padded enlarged boxes with '
                               'black past the image border; boxes are now clipped to the '
                               'image')
        if differences:
            teacher = (' It was built with another teacher.'
                       if any(d.startswith('teacher_fingerprint') for d in differences) else '')
            raise RegionCacheMismatch(
                f'The region cache {self.cache_dir} does not match the config: '
                + '; '.join(differences) + f'.{teacher} Delete the directory (or set '
                'rebuild_on_mismatch=True in BuildRegionCacheHook) to rebuild it, or point '
                'the config at a cache made this way.')

    def __contains__(self, img_id: int) -> bool:
        return int(img_id) in self.index

    def __len__(self) -> int:
        return len(self.index)

    def _shard(self, shard: int) -> Tuple[np.ndarray, np.ndarray]:
        if shard not in self._shards:
            boxes_file, embeddings_file = self._shard_files[shard]
            self._shards[shard] = (np.load(boxes_file, mmap_mode='r'),
                                   np.load(embeddings_file, mmap_mode='r'))
        return self._shards[shard]

    def get(self, img_id: int) -> Tuple[Tensor, Tensor]:
        """Boxes (K, 4) in original pixels and embeddings (K, D), both float32 tensors."""
        if int(img_id) not in self.index:
            raise KeyError(f'Image id {img_id} is not in the region cache {self.cache_dir}; '
                           'the cache was built for another dataset split.')
        shard, start, count = self.index[int(img_id)]
        boxes, embeddings = self._shard(shard)
        # copies: the memory-mapped arrays are read-only
        return (torch.from_numpy(np.array(boxes[start:start + count], np.float32)),
                torch.from_numpy(np.array(embeddings[start:start + count], np.float32)))


def _short(value) -> str:
    """Fingerprints shortened to 12 characters, other values as repr."""
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return repr(value)


def images_digest(img_ids: Iterable[int]) -> str:
    """sha256 of a set of image ids: which images a build covers."""
    return hashlib.sha256(json.dumps(sorted(int(i) for i in img_ids)).encode()).hexdigest()


class RegionCacheWriter:
    """Writes a cache shard by shard and resumes an interrupted build.

    Example::

        writer = RegionCacheWriter(cache_dir, key, img_ids=[...])
        for img_id, boxes, embeddings in records(skip=writer.done):
            writer.add(img_id, boxes, embeddings)
        cache = writer.finish()

    Args:
        cache_dir: the cache directory. If it holds an unfinished build with the same key
            and images, that build is continued (:attr:`done` lists the images it already
            holds); anything else there (a finished cache, another build) is deleted first.
            A non-empty directory that is not a region cache is refused.
        key: :func:`cache_key` fields.
        img_ids: the images the cache will hold (they must all be added before
            :meth:`finish`); ``None`` to accept whatever is added.
        shard_size: images per shard (the unit of resumption).
        resume: ``False`` always starts from scratch.
    """

    def __init__(self, cache_dir, key: dict, img_ids: Optional[Iterable[int]] = None,
                 shard_size: int = 256, resume: bool = True):
        if shard_size < 1:
            raise ValueError(f'shard_size must be >= 1, got {shard_size}')
        self.cache_dir = Path(cache_dir)
        self.key = dict(key)
        self.img_ids = None if img_ids is None else {int(i) for i in img_ids}
        self.shard_size = shard_size
        self.build = dict(self.key, version=CACHE_VERSION,
                          images=None if self.img_ids is None else images_digest(self.img_ids))
        self.shards: List[dict] = []
        if resume and self._same_build():
            self.shards = json.loads((self.cache_dir / 'progress.json').read_text())['shards']
        else:
            self._reset()
        self.done: Set[int] = {i for shard in self.shards for i in shard['img_ids']}
        self._pending: List[Tuple[int, np.ndarray, np.ndarray]] = []

    def _same_build(self) -> bool:
        build_file = self.cache_dir / 'build.json'
        return (build_file.is_file() and (self.cache_dir / 'progress.json').is_file()
                and not (self.cache_dir / 'meta.json').exists()
                and json.loads(build_file.read_text()) == self.build)

    def _reset(self) -> None:
        if self.cache_dir.exists() and any(self.cache_dir.iterdir()):
            names = {p.name for p in self.cache_dir.iterdir()}
            if not names & {'meta.json', 'build.json'}:
                raise FileExistsError(
                    f'{self.cache_dir} is not empty and holds no region cache (no meta.json or '
                    'build.json); refusing to overwrite it. Choose another cache directory.')
            # meta.json first: from here on the directory is no longer a finished cache
            (self.cache_dir / 'meta.json').unlink(missing_ok=True)
            shutil.rmtree(self.cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.cache_dir / 'build.json', self.build)
        _write_json(self.cache_dir / 'progress.json', dict(shards=[]))

    def add(self, img_id: int, boxes: np.ndarray, embeddings: np.ndarray) -> None:
        """Add one image: boxes (K, 4) in original pixels, embeddings (K, D)."""
        img_id = int(img_id)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or len(boxes) != len(embeddings):
            raise ValueError(f'image {img_id}: {len(boxes)} boxes but embeddings of shape '
                             f'{embeddings.shape}')
        if self.img_ids is not None and img_id not in self.img_ids:
            raise KeyError(f'image {img_id} is not among the images of this cache build')
        if img_id in self.done or any(img_id == p[0] for p in self._pending):
            raise ValueError(f'image {img_id} was added twice')
        self._pending.append((img_id, boxes, embeddings))
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending images as one shard and record it in ``progress.json``."""
        if not self._pending:
            return
        dims = {e.shape[1] for _, _, e in self._pending if len(e)} | {
            s['embed_dim'] for s in self.shards if s['embed_dim']}
        if len(dims) > 1:
            raise ValueError(f'embeddings of different dimensions {sorted(dims)} in one cache')
        dim = dims.pop() if dims else 0
        boxes_file, embeddings_file = _shard_paths(self.cache_dir, len(self.shards))
        _write_npy(boxes_file, np.concatenate([b for _, b, _ in self._pending]))
        _write_npy(embeddings_file, np.concatenate(
            [e.reshape(-1, dim) for _, _, e in self._pending]).astype(np.float16))
        self.shards.append(dict(img_ids=[i for i, _, _ in self._pending],
                                counts=[len(b) for _, b, _ in self._pending], embed_dim=dim))
        _write_json(self.cache_dir / 'progress.json', dict(shards=self.shards))
        self.done.update(i for i, _, _ in self._pending)
        self._pending = []

    def finish(self, extra_meta: Optional[dict] = None) -> RegionEmbeddingCache:
        """Write the last shard, the index and (last) ``meta.json``; return the cache."""
        self.flush()
        if self.img_ids is not None and self.done != self.img_ids:
            missing = sorted(self.img_ids - self.done)
            raise RuntimeError(f'The cache build misses {len(missing)} images '
                               f'(e.g. {missing[:5]}); it stays unfinished.')
        index, num_regions = {}, 0
        for shard_id, shard in enumerate(self.shards):
            start = 0
            for img_id, count in zip(shard['img_ids'], shard['counts']):
                index[img_id] = [shard_id, start, count]
                start += count
            num_regions += start
        dims = {s['embed_dim'] for s in self.shards if s['embed_dim']}
        clash = set(extra_meta or {}) & (set(self.key) | {'version', 'num_images'})
        if clash:
            raise ValueError(f'extra_meta must not redefine {sorted(clash)}')
        _write_json(self.cache_dir / 'index.json', index)
        meta = dict(version=CACHE_VERSION, **self.key, num_images=len(index),
                    num_regions=num_regions, embed_dim=int(dims.pop()) if dims else 0,
                    num_shards=len(self.shards), **(extra_meta or {}))
        _write_json(self.cache_dir / 'meta.json', meta)
        for name in _BUILD_FILES:
            (self.cache_dir / name).unlink(missing_ok=True)
        return RegionEmbeddingCache(self.cache_dir)


def write_region_cache(cache_dir, records: Iterable[Tuple[int, np.ndarray, np.ndarray]],
                       teacher_fingerprint: str, proposal_source: str,
                       extra_meta: Optional[dict] = None,
                       shard_size: int = 256, **settings) -> RegionEmbeddingCache:
    """Write ``(img_id, boxes (K,4), embeddings (K,D))`` records as a new cache.

    ``settings``: ``region_source``, ``scales``, ``num_proposals`` of the key. An
    interruption leaves an unfinished directory that is never read as a cache.
    """
    writer = RegionCacheWriter(cache_dir, cache_key(teacher_fingerprint, proposal_source,
                                                    **settings),
                               shard_size=shard_size, resume=False)
    for img_id, boxes, embeddings in records:
        writer.add(img_id, boxes, embeddings)
    return writer.finish(extra_meta)


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
