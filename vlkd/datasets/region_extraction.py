"""Region files of a vlkd-shapes split from a frozen two-stage detector.

Runs a :class:`vlkd.vlp.encoders.DetectorRegionExtractor` (a trained detector, e.g. the
ViLD-text detector of ``configs/vild/vild_text_r18_fpn_shapes.py``, trained on base-class
boxes only) over every image of a split and writes one region file per image for
:class:`vlkd.datasets.RegionTextDataset`. Two modes:

- ``proposals``: the detector's ``num_regions`` most confident RPN proposals, as a UNITER
  feature extractor would give them;
- ``gt_boxes``: the ground-truth boxes of the split's instances file, in annotation order,
  in place of the RPN's proposals: the detector's RoI features and class distributions of
  exactly the objects.

Images go to the detector as stored (BGR, 0-255; its data preprocessor normalises them), so
boxes are in image pixels. Output directory (write-once: :mod:`vlkd.datasets.cache_dir`)::

    meta.json        params (what the regions were made from: instances file, checkpoint and
                     its sha256, mode, num_regions, feature_layer), class_names (the columns
                     of class_probs when the box head names them: ViLD's test vocabulary and
                     'background'; else null), num_class_columns, feature_dim, num_images
    {img_id}.npz     regions of one image (format: vlkd.vlp.encoders.regions)
"""
import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from vlkd.checkpoint import resolve_checkpoint
from vlkd.vlp.encoders import DetectorRegionExtractor, save_region_file
from .cache_dir import write_once
from .captions import load_coco_instances
from .region_text import region_file_name
from .shapes import SHAPES_CLASSES

__all__ = ['REGION_MODES', 'extract_shapes_regions', 'proposals_from']

REGION_MODES = ('proposals', 'gt_boxes')
_REGIONS_VERSION = 1


@contextmanager
def proposals_from(extractor: DetectorRegionExtractor, boxes: Sequence[Tensor]):
    """Within the block, ``extractor``'s detector proposes exactly ``boxes`` (one (N_i, 4)
    xyxy px tensor per image of the next call, kept in their order) instead of running its
    RPN; RoI pooling, features and class distributions are the extractor's own."""
    rpn_head = extractor.detector.rpn_head
    kept = extractor.num_regions

    def predict(feats, batch_data_samples, rescale=False):
        if len(batch_data_samples) != len(boxes):
            raise ValueError(f'{len(boxes)} box sets for {len(batch_data_samples)} images.')
        device = feats[0].device
        # descending scores: the extractor's confidence sort keeps the given order
        return [InstanceData(bboxes=b.to(device=device, dtype=torch.float32),
                             scores=torch.arange(len(b), 0, -1, device=device).float())
                for b in boxes]

    rpn_head.predict = predict  # an instance attribute: shadows RPNHead.predict
    extractor.num_regions = max(len(b) for b in boxes)
    try:
        yield
    finally:
        del rpn_head.predict
        extractor.num_regions = kept


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _read_image(path: str) -> np.ndarray:
    image = mmcv.imread(path, channel_order='bgr')
    if image is None:
        raise ValueError(f'image {path} is missing or could not be decoded')
    return image


def extract_shapes_regions(out, data_root, split: str, checkpoint: str,
                           config: Optional[str] = None, mode: str = 'proposals',
                           num_regions: int = 10, feature_layer: str = 'projection',
                           batch_size: int = 16, device='cpu') -> Path:
    """Write the region files of vlkd-shapes ``split`` at ``data_root`` into ``out``.

    Args:
        checkpoint: the detector: a checkpoint file or work_dir written by tools/train.py
            (rebuilt from the config stored in it, or from ``config``).
        mode: ``'proposals'`` or ``'gt_boxes'`` (module docstring).
        num_regions: proposals kept per image (``proposals`` mode).
        feature_layer: the box-head layer whose input is the region feature:
            ``'projection'`` for vlkd's ViLD head, ``'fc_cls'`` for mmdet's Shared2FC head.
    Returns ``out``; an ``out`` already made with the same parameters is reused.
    """
    if mode not in REGION_MODES:
        raise ValueError(f'mode must be one of {REGION_MODES}, got {mode!r}.')
    data_root = Path(data_root)
    ann_file = data_root / 'annotations' / f'instances_{split}.json'
    checkpoint_file = resolve_checkpoint(checkpoint)
    params = dict(version=_REGIONS_VERSION, instances=str(ann_file.resolve()),
                  checkpoint=str(checkpoint_file.resolve()),
                  checkpoint_sha256=_sha256(checkpoint_file),
                  config=None if config is None else str(Path(config).resolve()), mode=mode,
                  num_regions=num_regions if mode == 'proposals' else None,
                  feature_layer=feature_layer)
    images = load_coco_instances(str(ann_file), SHAPES_CLASSES,
                                 str(data_root / 'images' / split))
    if mode == 'gt_boxes':
        empty = [img['img_path'] for img in images if not img['instances']]
        if empty:
            raise ValueError(f'{len(empty)} images of {ann_file} have no ground-truth box '
                             f'(e.g. {empty[0]}): gt_boxes mode needs at least one each.')

    def write(tmp: Path) -> dict:
        extractor = DetectorRegionExtractor(checkpoint=str(checkpoint_file), config=config,
                                            num_regions=num_regions,
                                            feature_layer=feature_layer).to(device)
        num_columns = None
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            pixels = [_read_image(img['img_path']) for img in batch]
            sizes = {p.shape for p in pixels}
            if len(sizes) > 1:
                raise ValueError(f'images of one batch differ in size ({sorted(sizes)}); '
                                 'use batch_size=1 for images of different sizes.')
            tensor = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float().to(device)
            if mode == 'gt_boxes':
                boxes = [torch.tensor([obj['bbox'] for obj in img['instances']],
                                      dtype=torch.float32) for img in batch]
                with proposals_from(extractor, boxes):
                    regions = extractor(tensor)
            else:
                regions = extractor(tensor)
            num_columns = regions.class_probs.shape[-1]
            for img, region_set in zip(batch, regions.split()):
                save_region_file(tmp / region_file_name(img['img_id']), region_set)
        bbox_head = extractor.detector.roi_head.bbox_head
        test_classes = getattr(bbox_head, 'test_classes', None)
        class_names = None if test_classes is None else list(test_classes) + ['background']
        return dict(params=params, class_names=class_names, num_class_columns=num_columns,
                    feature_dim=extractor.feature_dim, num_images=len(images))

    expected = [region_file_name(img['img_id']) for img in images]
    return write_once(out, params, expected, write, f'region files of {split}')
