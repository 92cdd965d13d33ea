"""Detector regions of images with their captions, for region-based pretraining (UNITER).

A region directory holds one region file per image, ``{img_id}.npz`` in the format of
:mod:`vlkd.vlp.encoders.regions` (boxes, features, class distributions, image size), and a
``meta.json`` saying how they were made (``tools/extract_regions.py``, see
:mod:`vlkd.datasets.region_extraction`). :class:`RegionTextDataset` pairs them with the
captions of a COCO-captions file; it is an :class:`~vlkd.datasets.ImageTextDataset`
(``items``, ``itm_negatives`` and the caption checks are the same) whose pipeline reads
region files instead of images::

    dict(type='RegionTextDataset', data_root='data/shapes/',
         ann_file='annotations/captions_train.json', region_dir='regions/gt/train/')

The default pipeline, :class:`LoadRegionFile` then :class:`PackRegionTextInputs`, gives
``inputs``: a :class:`~vlkd.vlp.encoders.RegionSet` and a data sample with ``text`` (and
``texts``, ``img_id``, ``caption_id``) in its metainfo; batch them with
``collate_fn=dict(type='vlkd.region_text_collate', max_regions=...)``.
"""
import os.path as osp
from typing import List, Sequence

from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from vlkd.registry import DATASETS, TRANSFORMS
from vlkd.vlp.encoders.regions import load_region_file
from .image_text import ImageTextDataset

__all__ = ['RegionTextDataset', 'LoadRegionFile', 'PackRegionTextInputs', 'region_file_name']

_EXTRACT = ('Write region files with `python tools/extract_regions.py --data-root DATA_ROOT '
            '--split SPLIT --checkpoint DETECTOR [--gt-boxes]`.')


def region_file_name(img_id) -> str:
    """The file of an image's regions in a region directory."""
    return f'{img_id}.npz'


@DATASETS.register_module()
class RegionTextDataset(ImageTextDataset):
    """Region files with captions (see the module docstring).

    Args:
        ann_file: COCO captions json of the images whose regions are in ``region_dir``.
        region_dir: the directory of ``{img_id}.npz`` region files (under ``data_root``).
        **kwargs: as :class:`~vlkd.datasets.ImageTextDataset`.
    """

    def __init__(self, ann_file: str, region_dir: str, **kwargs):
        self.region_dir = region_dir
        kwargs.setdefault('pipeline', [dict(type='vlkd.LoadRegionFile'),
                                       dict(type='vlkd.PackRegionTextInputs')])
        super().__init__(ann_file=ann_file, **kwargs)

    def _join_prefix(self):
        super()._join_prefix()
        if self.data_root and not osp.isabs(self.region_dir):
            self.region_dir = osp.join(self.data_root, self.region_dir)

    def load_images(self) -> List[dict]:
        if not osp.isdir(self.region_dir):
            raise FileNotFoundError(f'Region directory {self.region_dir} does not exist. '
                                    f'{_EXTRACT}')
        images = super().load_images()
        missing = []
        for image in images:
            image['region_file'] = osp.join(self.region_dir, region_file_name(image['img_id']))
            if not osp.isfile(image['region_file']):
                missing.append(image['region_file'])
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of the {len(images)} images of {self.ann_file} have no region '
                f'file in {self.region_dir} (e.g. {missing[0]}): were the regions extracted '
                f'from another split? {_EXTRACT}')
        return images


@TRANSFORMS.register_module()
class LoadRegionFile(BaseTransform):
    """Read ``results['region_file']`` into ``results['regions']`` (a RegionSet); a missing
    or broken file is an error naming it (:func:`vlkd.vlp.encoders.load_region_file`)."""

    def transform(self, results: dict) -> dict:
        results['regions'] = load_region_file(results['region_file'])
        return results


@TRANSFORMS.register_module()
class PackRegionTextInputs(BaseTransform):
    """``inputs``: the RegionSet; ``meta_keys`` into the metainfo of a data sample."""

    def __init__(self, meta_keys: Sequence[str] = ('img_id', 'region_file', 'text', 'texts',
                                                   'caption_id', 'negative_text')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement(metainfo={key: results[key] for key in self.meta_keys
                                           if key in results})
        return dict(inputs=results['regions'], data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
