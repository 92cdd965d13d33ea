"""OV-COCO and OV-LVIS as mmdet datasets, on the files of ``tools/make_ov_split.py``.

::

    dict(type='vlkd.OVCocoDataset', data_root='data/coco/',
         ann_file='annotations/instances_train2017_ov_base.json',
         data_prefix=dict(img='train2017/'),
         class_group='base')       # = metainfo=dict(classes=OV_COCO_BASE_CLASSES): labels 0..47
    dict(type='vlkd.OVLVISV1Dataset', data_root='data/lvis/',
         ann_file='annotations/lvis_v1_val.json', data_prefix=dict(img=''))  # 1203 classes

Labels follow the order of ``metainfo['classes']``, whatever the order of the categories in
the file (mmdet's CocoDataset follows the file's order, and LVISV1Dataset ignores the class
list). Every class must be a category of the file, and every annotation must belong to one
of the classes: an annotation of another category is an error, not silently dropped, because
in open-vocabulary training it would be a novel-class box the detector must not see. The
metainfo carries the class groups (``base_classes``, ``novel_classes``; for LVIS also
``rare_classes``, ``common_classes``, ``frequent_classes``), which the metrics and configs
read.
"""
import difflib
from collections import defaultdict
from typing import Dict, List, Optional

from mmdet.datasets import CocoDataset, LVISV1Dataset
from mmengine.fileio import exists, get_local_path

from vlkd.registry import DATASETS
from vlkd.teachers.class_names import check_class_names
from .ov_splits import (LVIS_V1_COMMON_CLASSES, LVIS_V1_FREQUENT_CLASSES,
                        LVIS_V1_RARE_CLASSES, OV_COCO_BASE_CLASSES, OV_COCO_CLASSES,
                        OV_COCO_NOVEL_CLASSES, OV_LVIS_BASE_CLASSES, OV_LVIS_NOVEL_CLASSES,
                        AnnotationFormatError, read_annotation_file)

__all__ = ['OVCocoDataset', 'OVLVISV1Dataset']

COCO_IMAGE_URL = 'http://images.cocodataset.org/'


class _NamedClassesMixin:
    """``load_data_list`` for COCO-format files with labels in ``metainfo['classes']`` order;
    mixed into mmdet's CocoDataset subclasses (it uses their ``parse_data_info``).

    ``class_group='base'`` (or another group of the metainfo: 'novel', 'rare', ..., or 'all')
    makes that group the dataset's classes, instead of listing them in
    ``metainfo=dict(classes=[...])``.
    """

    MAKE_IT = ''  # how to make the annotation file, for error messages

    def __init__(self, *args, class_group: Optional[str] = None,
                 metainfo: Optional[dict] = None, **kwargs):
        if class_group is not None:
            merged = dict(self.METAINFO, **(metainfo or {}))
            groups = {key[:-len('_classes')]: value for key, value in merged.items()
                      if key.endswith('_classes')}
            groups['all'] = self.METAINFO['classes']
            if class_group not in groups:
                raise ValueError(f'{type(self).__name__}: unknown class_group {class_group!r}; '
                                 f'choose one of {sorted(groups)}.')
            if metainfo and 'classes' in metainfo:
                raise ValueError(f'{type(self).__name__}: give class_group or '
                                 "metainfo['classes'], not both.")
            metainfo = dict(metainfo or {}, classes=list(groups[class_group]))
        super().__init__(*args, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        name = type(self).__name__
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(f'{name}: annotation file {self.ann_file} not found; '
                                    f'{self.MAKE_IT}.')
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            data = read_annotation_file(local_path, name)
        classes = check_class_names(self.metainfo['classes'], f'{name} classes')
        categories = {category['name']: category for category in data['categories']}
        missing = [c for c in classes if c not in categories]
        if missing:
            raise AnnotationFormatError(
                f'{name}: {len(missing)} of the {len(classes)} classes are not categories of '
                f'{self.ann_file}: {_with_hints(missing, list(categories))}. Check '
                "metainfo['classes'] and the annotation file.")
        self.check_categories(data['categories'])

        self.cat_ids = [categories[c]['id'] for c in classes]
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        annotations_of = defaultdict(list)
        unlisted: Dict[int, int] = defaultdict(int)
        self.cat_img_map = defaultdict(list)
        for annotation in data['annotations']:
            if annotation['category_id'] not in self.cat2label:
                unlisted[annotation['category_id']] += 1
                continue
            annotations_of[annotation['image_id']].append(annotation)
            self.cat_img_map[annotation['category_id']].append(annotation['image_id'])
        if unlisted:
            names = {category['id']: category['name'] for category in data['categories']}
            examples = sorted(unlisted, key=lambda i: -unlisted[i])[:5]
            raise AnnotationFormatError(
                f'{name}: {sum(unlisted.values())} annotations of {self.ann_file} belong to '
                f'{len(unlisted)} categories that are not among the {len(classes)} classes '
                f'(e.g. {[names[i] for i in examples]}). Open-vocabulary training must not '
                f'see such boxes: {self.MAKE_IT}, or list the categories in '
                "metainfo['classes'].")
        ids = [a['id'] for anns in annotations_of.values() for a in anns if 'id' in a]
        if self.ANN_ID_UNIQUE and len(set(ids)) != len(ids):
            raise AnnotationFormatError(f'{name}: annotation ids in {self.ann_file} are not '
                                        'unique.')
        data_list = []
        for image in data['images']:
            raw_img_info = dict(image, img_id=image['id'], file_name=self.image_file(image))
            data_list.append(self.parse_data_info(dict(
                raw_img_info=raw_img_info, raw_ann_info=annotations_of.get(image['id'], []))))
        return data_list

    def image_file(self, image: dict) -> str:
        """Path of an image relative to ``data_prefix['img']``."""
        if 'file_name' not in image:
            raise AnnotationFormatError(f'{type(self).__name__}: image {image["id"]} of '
                                        f'{self.ann_file} has no file_name.')
        return image['file_name']

    def check_categories(self, categories: List[dict]) -> None:
        """Further checks of the file's categories against the metainfo (none here)."""


@DATASETS.register_module()
class OVCocoDataset(_NamedClassesMixin, CocoDataset):
    """OV-COCO: COCO 2017 with the 48 base / 17 novel classes (65 evaluated)."""

    METAINFO = dict(
        classes=OV_COCO_CLASSES,
        base_classes=list(OV_COCO_BASE_CLASSES),
        novel_classes=list(OV_COCO_NOVEL_CLASSES),
        palette=[CocoDataset.METAINFO['palette'][CocoDataset.METAINFO['classes'].index(c)]
                 for c in OV_COCO_CLASSES])
    MAKE_IT = ('derive the OV-COCO files from the COCO 2017 annotations with '
               '`python tools/make_ov_split.py coco data/coco/annotations`')


@DATASETS.register_module()
class OVLVISV1Dataset(_NamedClassesMixin, LVISV1Dataset):
    """OV-LVIS: LVIS v1 with the 866 frequent + common classes as base, the 337 rare ones as
    novel. Images are found from their ``coco_url`` (``train2017/...`` or ``val2017/...``
    under ``data_prefix['img']``), as in mmdet's LVISV1Dataset."""

    METAINFO = dict(
        LVISV1Dataset.METAINFO,
        base_classes=list(OV_LVIS_BASE_CLASSES),
        novel_classes=list(OV_LVIS_NOVEL_CLASSES),
        rare_classes=list(LVIS_V1_RARE_CLASSES),
        common_classes=list(LVIS_V1_COMMON_CLASSES),
        frequent_classes=list(LVIS_V1_FREQUENT_CLASSES))
    MAKE_IT = ('derive the OV-LVIS train file from lvis_v1_train.json with '
               '`python tools/make_ov_split.py lvis data/lvis/annotations`')

    def image_file(self, image: dict) -> str:
        url = image.get('coco_url', '')
        if url.startswith(COCO_IMAGE_URL):
            return url[len(COCO_IMAGE_URL):]
        return super().image_file(image)

    def check_categories(self, categories: List[dict]) -> None:
        """The file's ``frequency`` fields must agree with the metainfo's frequency groups."""
        group_of = {}
        for group, letter in (('rare_classes', 'r'), ('common_classes', 'c'),
                              ('frequent_classes', 'f')):
            for class_name in self.metainfo.get(group, ()):
                group_of[class_name] = letter
        wrong = [f"{c['name']!r} is {c['frequency']!r}" for c in categories
                 if 'frequency' in c and c['name'] in group_of
                 and c['frequency'] != group_of[c['name']]]
        if wrong:
            raise AnnotationFormatError(
                f'{type(self).__name__}: the frequency of {len(wrong)} categories in '
                f'{self.ann_file} differs from the metainfo frequency groups (LVIS v1): '
                f'{", ".join(wrong[:5])}{" ..." if len(wrong) > 5 else ""}. Is this an LVIS v1 '
                'file? Otherwise set rare_classes / common_classes / frequent_classes in '
                'metainfo.')


def _with_hints(unknown: List[str], known: List[str], limit: int = 10) -> str:
    described = []
    for name in unknown[:limit]:
        close = difflib.get_close_matches(name, known, n=1)
        described.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    return ', '.join(described) + (' ...' if len(unknown) > limit else '')
