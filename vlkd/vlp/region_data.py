"""Object labels for region inputs: what region-based recipes (GLIP-style grounding, and the
zero-shot evaluation of UNITER / GLIP) need besides :class:`vlkd.datasets.RegionTextDataset`.

- :class:`AssignRegionLabels` (transform): the class of each region of a region file, from
  the image's ground-truth boxes (IoU assignment, as a detector assigns its proposals); -1
  for background regions. Packed as ``region_labels`` in the data sample.
- :class:`ShapesObjectRegionDataset`: every ground-truth object of a vlkd-shapes split as
  one item holding only its own region (from ``gt_boxes`` region files of
  ``tools/extract_regions.py``), with ``gt_label`` and the caption "a {colour} {class}":
  the region counterpart of :class:`vlkd.datasets.ShapesObjectCropDataset` for zero-shot
  classification.
"""
import os.path as osp
from typing import Dict, List, Sequence

import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from torchvision.ops import box_iou

from vlkd.datasets.captions import load_coco_instances
from vlkd.datasets.image_text import run_pipeline
from vlkd.datasets.region_text import region_file_name
from vlkd.datasets.shapes import SHAPES_CLASSES
from vlkd.registry import DATASETS, TRANSFORMS
from vlkd.teachers.templates import fill_template
from .encoders import RegionSet


def _instances_by_image(instances_file: str, classes: Sequence[str]) -> Dict[int, dict]:
    return {image['img_id']: image for image in load_coco_instances(instances_file, classes, '')}


@TRANSFORMS.register_module()
class AssignRegionLabels(BaseTransform):
    """``results['region_labels']`` (N,) int64: for each region of ``results['regions']``
    the class index of the ground-truth box it overlaps most if that IoU is at least
    ``iou_threshold``, else -1.

    Args:
        instances_file: COCO instances json of the split (boxes and classes).
        classes: class names, in label order.
        iou_threshold: least IoU of a region with a box to take its class.
    """

    def __init__(self, instances_file: str, classes: Sequence[str] = SHAPES_CLASSES,
                 iou_threshold: float = 0.5):
        self.instances_file = instances_file
        self.iou_threshold = iou_threshold
        self.images = _instances_by_image(instances_file, list(classes))

    def transform(self, results: dict) -> dict:
        image = self.images.get(results['img_id'])
        if image is None:
            raise KeyError(f'image {results["img_id"]} is not in {self.instances_file}.')
        boxes = results['regions'].boxes
        labels = torch.full((len(boxes),), -1, dtype=torch.long)
        if image['instances'] and len(boxes):
            gt_boxes = torch.tensor([obj['bbox'] for obj in image['instances']],
                                    dtype=torch.float32)
            gt_labels = torch.tensor([obj['bbox_label'] for obj in image['instances']])
            best, index = box_iou(boxes, gt_boxes).max(dim=1)
            labels = torch.where(best >= self.iou_threshold, gt_labels[index], labels)
        results['region_labels'] = labels
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(instances_file={self.instances_file!r}, '
                f'iou_threshold={self.iou_threshold})')


@TRANSFORMS.register_module()
class KeepObjectRegion(BaseTransform):
    """Keep only region ``results['region_index']`` of ``results['regions']``, checking that
    it is the object's box (``results['crop_bbox']``, within 1 px): region files written in
    ``gt_boxes`` mode list the boxes in annotation order."""

    def transform(self, results: dict) -> dict:
        regions, index = results['regions'], results['region_index']
        expected = torch.tensor(results['crop_bbox'], dtype=torch.float32)
        if index >= len(regions.boxes) or \
                (regions.boxes[index] - expected).abs().max() > 1.0:
            raise ValueError(f'{results["region_file"]} does not hold the ground-truth box '
                             f'{results["crop_bbox"]} as region {index}: evaluate on region '
                             'files written with tools/extract_regions.py --gt-boxes.')
        results['regions'] = RegionSet(regions.boxes[index:index + 1],
                                       regions.features[index:index + 1],
                                       regions.class_probs[index:index + 1],
                                       regions.image_size)
        return results


@DATASETS.register_module()
class ShapesObjectRegionDataset(BaseDataset):
    """Every object of a vlkd-shapes split as one region item (see the module doc).

    Args:
        ann_file: COCO instances json of the split (``annotations/instances_val.json``).
        region_dir: its ``gt_boxes`` region files, ``{img_id}.npz`` (under ``data_root``).
    """

    METAINFO = dict(classes=SHAPES_CLASSES)

    def __init__(self, ann_file: str, region_dir: str, **kwargs):
        self.region_dir = region_dir
        kwargs.setdefault('pipeline', [
            dict(type='vlkd.LoadRegionFile'), dict(type='vlkd.KeepObjectRegion'),
            dict(type='vlkd.PackRegionTextInputs',
                 meta_keys=('img_id', 'region_file', 'text', 'gt_label', 'crop_bbox'))])
        super().__init__(ann_file=ann_file, **kwargs)

    def _join_prefix(self):
        super()._join_prefix()
        if self.data_root and not osp.isabs(self.region_dir):
            self.region_dir = osp.join(self.data_root, self.region_dir)

    def load_data_list(self) -> List[dict]:
        classes = self.metainfo['classes']
        data_list = []
        for image in load_coco_instances(self.ann_file, classes, ''):
            region_file = osp.join(self.region_dir, region_file_name(image['img_id']))
            if not osp.isfile(region_file):
                raise FileNotFoundError(
                    f'{region_file} does not exist: write the region files of this split '
                    'with `python tools/extract_regions.py --gt-boxes ...`.')
            for index, obj in enumerate(image['instances']):
                name = classes[obj['bbox_label']]
                text = fill_template('a {}', f"{obj['color']} {name}" if obj['color'] else name)
                data_list.append(dict(img_id=image['img_id'], region_file=region_file,
                                      region_index=index, crop_bbox=obj['bbox'],
                                      gt_label=obj['bbox_label'], text=text))
        return data_list

    def prepare_data(self, idx: int) -> dict:
        return run_pipeline(self.pipeline, self.get_data_info(idx), type(self).__name__)
