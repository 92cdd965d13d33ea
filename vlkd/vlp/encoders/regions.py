"""Detector regions of images: one image's set, a padded batch, and their file format.

File format: one ``.npz`` file per image (``numpy.savez``, no pickled objects), written by
:func:`save_region_file` and read by :func:`load_region_file`:

=============== ============ ===========================================================
key             shape, dtype meaning
=============== ============ ===========================================================
``boxes``       (N, 4) f32   x1, y1, x2, y2 in pixels of the image the detector saw
``features``    (N, F) f32   region feature vectors (float16 files are read as float32)
``class_probs`` (N, K) f32   the detector's class distribution of each region (rows sum
                             to 1; background column included if the detector has one)
``image_size``  (2,) int     height, width (px) of the image the boxes refer to
=============== ============ ===========================================================

Regions are stored in the detector's confidence order, so truncating to the first
``max_regions`` keeps the most confident ones. A directory of such files is usually named
``{img_id}.npz`` per image.
"""
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

REGION_FILE_KEYS = ('boxes', 'features', 'class_probs', 'image_size')


@dataclass
class RegionSet:
    """The regions of one image: boxes (N, 4) xyxy px, features (N, F), class_probs (N, K),
    image_size (height, width) px."""

    boxes: Tensor
    features: Tensor
    class_probs: Tensor
    image_size: tuple

    def __post_init__(self):
        n = len(self.boxes)
        if self.boxes.dim() != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f'boxes must be (N, 4), got {tuple(self.boxes.shape)}.')
        for name in ('features', 'class_probs'):
            value = getattr(self, name)
            if value.dim() != 2 or len(value) != n:
                raise ValueError(f'{name} must be (N, ·) with N = {n} boxes, got '
                                 f'{tuple(value.shape)}.')
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f'image_size must be (height, width) > 0, got {self.image_size}.')
        self.image_size = tuple(int(s) for s in self.image_size)


@dataclass
class RegionBatch:
    """Regions of B images padded to N: features (B, N, F), boxes (B, N, 4) xyxy px,
    image_sizes (B, 2) (height, width) px, mask (B, N) bool (True = region), class_probs
    (B, N, K) or None."""

    features: Tensor
    boxes: Tensor
    image_sizes: Tensor
    mask: Tensor
    class_probs: Optional[Tensor] = None

    def to(self, device) -> 'RegionBatch':
        return RegionBatch(*(None if t is None else t.to(device) for t in
                             (self.features, self.boxes, self.image_sizes, self.mask,
                              self.class_probs)))

    def split(self) -> List[RegionSet]:
        """The valid regions of each image (e.g. to write them with :func:`save_region_file`)."""
        if self.class_probs is None:
            raise ValueError('A RegionSet needs class_probs; this batch has none.')
        return [RegionSet(self.boxes[i][m], self.features[i][m], self.class_probs[i][m],
                          tuple(self.image_sizes[i].tolist()))
                for i, m in enumerate(self.mask)]


def save_region_file(path, regions: RegionSet) -> None:
    """Write one image's regions in the format of the module docstring."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'wb') as f:  # an open file: numpy would otherwise append .npz
        np.savez(f, boxes=regions.boxes.detach().cpu().float().numpy(),
                 features=regions.features.detach().cpu().float().numpy(),
                 class_probs=regions.class_probs.detach().cpu().float().numpy(),
                 image_size=np.asarray(regions.image_size, dtype=np.int64))


def load_region_file(path) -> RegionSet:
    """Read and check one region file; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Region file {path} does not exist. Region files are '
                                'written by vlkd.vlp.encoders.save_region_file (one .npz per '
                                'image); check the directory and the image id.')
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError('it holds a single array (.npy), not an .npz archive')
        with data:
            arrays = {k: data[k] for k in REGION_FILE_KEYS if k in data.files}
            stored = data.files
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(f'Region file {path} is corrupt or not a .npz file '
                         f'({type(err).__name__}: {err}). Rewrite it.') from err
    missing = [k for k in REGION_FILE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f'Region file {path} lacks {missing}; it has {stored}.')
    boxes, features, probs = (torch.from_numpy(arrays[k].astype(np.float32))
                              for k in ('boxes', 'features', 'class_probs'))
    try:
        regions = RegionSet(boxes, features, probs, tuple(arrays['image_size'].tolist()))
    except ValueError as err:
        raise ValueError(f'Region file {path}: {err}') from err
    problems = []
    if not all(torch.isfinite(t).all() for t in (boxes, features, probs)):
        problems.append('non-finite values')
    if len(boxes) and ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        problems.append('boxes with x2 < x1 or y2 < y1')
    if len(probs) and ((probs < 0).any() or (probs.sum(1) - 1).abs().max() > 1e-3):
        problems.append('class_probs rows that are not probability distributions')
    if problems:
        raise ValueError(f'Region file {path} has {", ".join(problems)}.')
    return regions


def collate_regions(sets: Sequence[RegionSet], max_regions: Optional[int] = None
                    ) -> RegionBatch:
    """Pad (and truncate to the first ``max_regions``) the region sets of a batch."""
    if not sets:
        raise ValueError('collate_regions got no region sets.')
    dims = {(s.features.shape[1], s.class_probs.shape[1]) for s in sets}
    if len(dims) > 1:
        raise ValueError(f'Region sets of one batch differ in feature / class dimension: '
                         f'{sorted(dims)}.')
    (feature_dim, num_classes), = dims
    counts = [len(s.boxes) if max_regions is None else min(len(s.boxes), max_regions)
              for s in sets]
    batch, n = len(sets), max(max(counts), 1)
    features = torch.zeros(batch, n, feature_dim)
    boxes = torch.zeros(batch, n, 4)
    probs = torch.zeros(batch, n, num_classes)
    mask = torch.zeros(batch, n, dtype=torch.bool)
    for i, (regions, count) in enumerate(zip(sets, counts)):
        features[i, :count] = regions.features[:count]
        boxes[i, :count] = regions.boxes[:count]
        probs[i, :count] = regions.class_probs[:count]
        mask[i, :count] = True
    image_sizes = torch.tensor([s.image_size for s in sets], dtype=torch.float32)
    return RegionBatch(features, boxes, image_sizes, mask, probs)
