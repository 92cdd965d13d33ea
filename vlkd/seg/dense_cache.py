"""On-disk cache of the teacher's dense embeddings of a training set.

A teacher view can cost far more than a student step (a sliding window embeds every cell
of every image). The maps of the un-augmented training images are computed once, before
training (:class:`BuildDenseTeacherCacheHook`), and every later step and run reads them;
the student flips a map with its image (``flip`` in the sample's meta) and, as the maps
cover the whole image, resizing is harmless. Pipelines that crop cannot use the cache.

```
CACHE_DIR/meta.json    the key (teacher fingerprint, dense view), count, map shape
CACHE_DIR/index.json   {absolute image path: row}
CACHE_DIR/dense.npy    (N, D, h, w) float16, L2-normalised per location
```
The directory is written to a temporary sibling and renamed into place, so it is either
absent or whole. A cache is read only by runs whose key agrees.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch import Tensor

from vlkd.registry import HOOKS


class DenseCacheMismatch(RuntimeError):
    """The cache was built for another teacher, dense view or image list."""


def cache_key(teacher_fingerprint: str, view: str) -> dict:
    return dict(teacher_fingerprint=str(teacher_fingerprint), view=str(view))


class DenseTeacherCache:
    """Teacher dense maps of a list of images, stored under ``cache_dir``."""

    def __init__(self, cache_dir) -> None:
        self.cache_dir = Path(cache_dir)
        self._index: Optional[dict] = None
        self._maps: Optional[np.ndarray] = None

    def meta(self) -> Optional[dict]:
        path = self.cache_dir / 'meta.json'
        return json.loads(path.read_text()) if path.is_file() else None

    def check(self, key: dict) -> bool:
        """True if a finished cache with ``key`` exists; raises if it has another key."""
        meta = self.meta()
        if meta is None:
            return False
        if meta['key'] != key:
            raise DenseCacheMismatch(
                f'Dense cache {self.cache_dir} was built for {meta["key"]}, this run uses '
                f'{key}. Delete the directory or give another dense_cache directory.')
        return True

    def build(self, key: dict, image_paths: Sequence[str],
              compute: Callable[[Tensor], Tensor], batch_size: int = 16) -> None:
        """Compute and store the maps of ``image_paths``: ``compute`` maps float RGB images
        (B, 3, H, W) in 0..255 to normalised dense embeddings (B, D, h, w)."""
        paths = list(dict.fromkeys(os.path.abspath(p) for p in image_paths))
        if not paths:
            raise ValueError('No images to cache: the training dataset is empty.')
        self.cache_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.cache_dir.parent, prefix=f'.{self.cache_dir.name}.'))
        try:
            maps = None
            for start in range(0, len(paths), batch_size):
                batch = [_read_rgb(p) for p in paths[start:start + batch_size]]
                if len({image.shape for image in batch}) == 1:
                    dense = compute(torch.stack(batch))
                else:  # images of different sizes, one by one
                    dense = torch.cat([compute(image[None]) for image in batch])
                if maps is None:
                    maps = np.lib.format.open_memmap(tmp / 'dense.npy', mode='w+',
                                                     dtype=np.float16,
                                                     shape=(len(paths), *dense.shape[1:]))
                maps[start:start + len(batch)] = dense.cpu().numpy().astype(np.float16)
                if start % (batch_size * 20) == 0:
                    print_log(f'dense cache: {start + len(batch)} / {len(paths)} images',
                              logger='current')
            maps.flush()
            (tmp / 'index.json').write_text(json.dumps({p: i for i, p in enumerate(paths)}))
            (tmp / 'meta.json').write_text(json.dumps(dict(
                key=key, count=len(paths), shape=list(maps.shape[1:])), indent=1))
            del maps
            if self.cache_dir.exists():
                raise FileExistsError(f'{self.cache_dir} appeared while the cache was built.')
            os.replace(tmp, self.cache_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def get(self, image_paths: Sequence[str]) -> Tensor:
        """(B, D, h, w) float32 maps of the images, in order."""
        if self._maps is None:
            if self.meta() is None:
                raise FileNotFoundError(
                    f'Dense cache {self.cache_dir} is not built: add '
                    "custom_hooks=[dict(type='BuildDenseTeacherCacheHook')] to the config.")
            self._index = json.loads((self.cache_dir / 'index.json').read_text())
            self._maps = np.load(self.cache_dir / 'dense.npy', mmap_mode='r')
        rows = []
        for path in image_paths:
            row = self._index.get(os.path.abspath(path))
            if row is None:
                raise KeyError(f'{path} is not in the dense cache {self.cache_dir} (built for '
                               f'{len(self._index)} other images).')
            rows.append(row)
        return torch.from_numpy(np.stack([self._maps[r] for r in rows]).astype(np.float32))


def _read_rgb(path: str) -> Tensor:
    image = mmcv.imread(path, channel_order='rgb')
    if image is None:
        raise FileNotFoundError(f'Cannot read image {path}.')
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def dataset_image_paths(dataset) -> List[str]:
    """``img_path`` of every sample of an mmengine dataset (wrappers included)."""
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


@HOOKS.register_module()
class BuildDenseTeacherCacheHook(Hook):
    """Before training, build the model's dense cache of the training images if it is not
    there yet (a model with ``dense_cache`` set: :class:`OpenVocabEncoderDecoder`)."""

    priority = 'VERY_HIGH'

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size

    def before_train(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        if getattr(model, 'dense_cache', None) is None:
            raise ValueError('BuildDenseTeacherCacheHook needs a model with dense_cache set '
                             '(OpenVocabEncoderDecoder(dense_cache=DIR)).')
        model.build_dense_cache(dataset_image_paths(runner.train_dataloader.dataset),
                                self.batch_size)
