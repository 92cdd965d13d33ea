"""The open-vocabulary splits of COCO 2017 and LVIS v1: class lists and annotation files.

**OV-COCO** (48 base / 17 novel classes). The split of Bansal et al., "Zero-Shot Object
Detection" (ECCV 2018; lists published as ``mscoco_seen_classes.json`` /
``mscoco_unseen_classes.json``), adopted by Zareian et al., "Open-Vocabulary Object Detection
Using Captions" (OVR-CNN, CVPR 2021) and used by ViLD, Detic, RegionCLIP, OADP, BARON and the
region-based KD methods. 15 of COCO's 80 classes belong to neither group and are not
evaluated. The files follow OVR-CNN's recipe (its ``ipynb/003.ipynb``, whose outputs are
known as ``instances_train2017_seen_2.json`` / ``instances_val2017_all_2.json``):

- train: the 48 base categories; the annotations of base categories (crowd ones included);
  the images holding at least one of them. Images whose objects are all novel or excluded
  are dropped (they would only teach the detector that novel objects are background).
- val: the 65 base + novel categories, their annotations and the images holding at least one.

Each kept category gets ``"split": "base"`` or ``"novel"``. OVR-CNN reports 107,761 train and
4,836 val images for this split of COCO 2017.

**OV-LVIS** (866 base = frequent + common, 337 novel = rare). The protocol of ViLD
(Gu et al., ICLR 2022), with the train file of Detic (``lvis_v1_train_norare.json``): the
annotations of rare categories are removed from ``lvis_v1_train.json``, everything else (all
images, all 1203 categories, the image-level negative / not-exhaustive lists) is kept. The
rare categories are read from each category's ``frequency`` field ('r', 'c', 'f'). Models are
evaluated on the unchanged ``lvis_v1_val.json``; the headline number is mask AP on rare
categories (APr).

The LVIS v1 frequency groups are also listed here (``LVIS_V1_FREQUENCY``) so that configs can
name the base vocabulary without reading the annotation file; the datasets check them
against the file's ``frequency`` fields when they load it.
"""
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from mmdet.datasets import CocoDataset, LVISV1Dataset

__all__ = ['OV_COCO_BASE_CLASSES', 'OV_COCO_NOVEL_CLASSES', 'OV_COCO_CLASSES',
           'LVIS_V1_CLASSES', 'LVIS_V1_FREQUENCY', 'LVIS_V1_RARE_CLASSES',
           'LVIS_V1_COMMON_CLASSES', 'LVIS_V1_FREQUENT_CLASSES', 'OV_LVIS_BASE_CLASSES',
           'OV_LVIS_NOVEL_CLASSES', 'SplitSummary', 'AnnotationFormatError',
           'ov_coco_split', 'ov_lvis_train_split', 'read_annotation_file',
           'write_annotation_file']

# In COCO category-id order (the order of instances_*2017.json), which is also the label
# order of the datasets built on the split files.
OV_COCO_BASE_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'train', 'truck', 'boat', 'bench', 'bird',
    'horse', 'sheep', 'bear', 'zebra', 'giraffe', 'backpack', 'handbag', 'suitcase',
    'frisbee', 'skis', 'kite', 'surfboard', 'bottle', 'fork', 'spoon', 'bowl', 'banana',
    'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'pizza', 'donut', 'chair', 'bed',
    'toilet', 'tv', 'laptop', 'mouse', 'remote', 'microwave', 'oven', 'toaster',
    'refrigerator', 'book', 'clock', 'vase', 'toothbrush')
OV_COCO_NOVEL_CLASSES = (
    'airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard',
    'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')
# The 65 evaluated classes in COCO category-id order (a subsequence of mmdet's 80 names).
OV_COCO_CLASSES = tuple(name for name in CocoDataset.METAINFO['classes']
                        if name in OV_COCO_BASE_CLASSES + OV_COCO_NOVEL_CLASSES)

# LVIS v1 category names in id order (ids 1..1203), as mmdet lists them.
LVIS_V1_CLASSES = tuple(LVISV1Dataset.METAINFO['classes'])
# The ``frequency`` field of each LVIS v1 category, in id order: 'r' rare (1-10 training
# images), 'c' common (11-100), 'f' frequent (> 100). Transcribed from the categories of
# lvis_v1_val.json (as reproduced in detectron2's lvis_v1_categories.py): 337 r, 461 c, 405 f.
LVIS_V1_FREQUENCY = (
    'cfffccccccffrrfcrcfrrcfcccfcfrrfcfffcrrrfrfcfccfrfrrfccffffffcrcffcfrcrcccfffrff'  # 1-80
    'frfcrfffffccrfffccfccccfrrccffcfrfffrfrcccrcfrfccrrffccrfffrcrfrcfrccfrfcfrcccrf'  # -160
    'rccrccrcfcfrfcfcffrcfrfcfcccfccfcffrcccccrffccffrrcccrrcffcccrrcffccffrfrrfrrrcr'  # -240
    'cccrrcrccrrffffcrrfcfrccrrccrrffccrffcccrrcffcrcccrrcrrffffrrrfrffrcfrccrccrrcfc'  # -320
    'rcrfcrcccfrcrccccfcccfcfcffrrffrrrrcrfccfrcrrrfrfccffrfrffffrrccfcfrrfcfcffcrrcr'  # -400
    'fccfrcrcfrfcrrfrcccrffcccrrrffrrccrcfcrfffcffrfcrcffcccrcrfcfcccccrcfccccfccfrrr'  # -480
    'rrcccrcrccrrcccfcfcfcfrccrcrrfccrffrfrccfccfccrfcccrcfrfcrcfrrrfrcfffcrccccfrcfr'  # -560
    'rcfcffrrffrrcrrcrfcrcrrcrfccfcffcrfcrcrccrrcfrccfrfccffrfrrrfccfrfffcffrfrrccrfr'  # -640
    'fffffrfrccrcfcfcrffcfrrrrccfffrrcrffcrfcccccfrfrfrrfrfcccfcffrffffcffrcrfrffccfc'  # -720
    'crcfcfrfrrccrffccffcccrcfccffcfrcrrffrrccccrcfccrcfrcccfcrrcffrrrcrrfccrfccrcfff'  # -800
    'ccrfrfcrrrfrcfrfffcrcrrrccffrcrfccffffccccccfccfrrrrrcrrcrrfcrcrfcccrcccrccfcccf'  # -880
    'fcrcfrrccrrrcrcfcfffcrffrccrcfffrrffrrfrfcffrcfcccrcccccrrrcrrfrrcfffcfrfcfrfrfc'  # -960
    'ffcfffffrccrcrrfccffffrcrfrccrrrfrfccrcfccrcrccfcrfrccrrfffffcfffffrrrrrfcfcfccc'  # -1040
    'cffcfcrrrfcfrrffrrfffccfcccccfffcfrcfffrccfrccccccfcfcffffffcffffccfffcfcffrfrrc'  # -1120
    'fffrcrccrcccffrfccfcffcrrrcrcrccccffrrrcffccrcrccccffcccffcccccccfcfcffcrcccffcc'  # -1200
    'cfc')
LVIS_V1_RARE_CLASSES = tuple(n for n, f in zip(LVIS_V1_CLASSES, LVIS_V1_FREQUENCY) if f == 'r')
LVIS_V1_COMMON_CLASSES = tuple(n for n, f in zip(LVIS_V1_CLASSES, LVIS_V1_FREQUENCY)
                               if f == 'c')
LVIS_V1_FREQUENT_CLASSES = tuple(n for n, f in zip(LVIS_V1_CLASSES, LVIS_V1_FREQUENCY)
                                 if f == 'f')
OV_LVIS_BASE_CLASSES = tuple(n for n, f in zip(LVIS_V1_CLASSES, LVIS_V1_FREQUENCY) if f != 'r')
OV_LVIS_NOVEL_CLASSES = LVIS_V1_RARE_CLASSES

LVIS_FREQUENCIES = ('r', 'c', 'f')


class AnnotationFormatError(ValueError):
    """An annotation file that is not in the format (COCO or LVIS) it should be."""


@dataclass
class SplitSummary:
    """What a split kept and dropped, printed by ``tools/make_ov_split.py``."""
    name: str
    images: int
    images_dropped: int
    annotations: int
    annotations_dropped: int
    categories: Dict[str, int] = field(default_factory=dict)       # group -> categories
    group_annotations: Dict[str, int] = field(default_factory=dict)  # group -> annotations

    def lines(self) -> List[str]:
        groups = ', '.join(f'{group} {n} ({self.group_annotations.get(group, 0)} annotations)'
                           for group, n in self.categories.items())
        return [f'{self.name}:',
                f'  images       {self.images:>9,} kept, {self.images_dropped:>9,} dropped',
                f'  annotations  {self.annotations:>9,} kept, '
                f'{self.annotations_dropped:>9,} dropped',
                f'  categories   {groups}']


# -- reading and checking ----------------------------------------------------------------
def read_annotation_file(path, what: str) -> dict:
    """Load a COCO-format json file; ``what`` names it in errors ('COCO 2017 train', ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} annotation file {path} not found.')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise AnnotationFormatError(f'{what} annotation file {path} is not valid json: '
                                    f'{err}') from err
    check_instances_format(data, f'{what} annotation file {path}')
    return data


def check_instances_format(data, source: str) -> None:
    """Raise AnnotationFormatError unless ``data`` holds COCO-style 'images', 'annotations'
    and 'categories' whose ids are unique and whose annotations refer to known ids."""
    if not isinstance(data, dict):
        raise AnnotationFormatError(f'{source} must hold a json object with images, '
                                    f'annotations and categories, not a {type(data).__name__}.')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise AnnotationFormatError(
                f'{source} has no {key!r} list (keys: {sorted(data)}); it is not a COCO / '
                'LVIS instances file.')
    image_ids = _unique_ids(data['images'], 'images', source)
    category_ids = _unique_ids(data['categories'], 'categories', source)
    names = [category.get('name') for category in data['categories']]
    if not all(isinstance(name, str) and name for name in names):
        raise AnnotationFormatError(f'{source}: every category needs a non-empty "name".')
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise AnnotationFormatError(f'{source} repeats the category names {repeated}.')
    for annotation in data['annotations']:
        if not isinstance(annotation, dict) or 'image_id' not in annotation or \
                'category_id' not in annotation:
            raise AnnotationFormatError(
                f'{source}: annotation {annotation!r:.200} lacks image_id or category_id.')
        if annotation['category_id'] not in category_ids:
            raise AnnotationFormatError(
                f'{source}: annotation {annotation.get("id")} has category_id '
                f'{annotation["category_id"]}, which is not among the categories.')
        if annotation['image_id'] not in image_ids:
            raise AnnotationFormatError(
                f'{source}: annotation {annotation.get("id")} has image_id '
                f'{annotation["image_id"]}, which is not among the images.')


def _unique_ids(entries: list, key: str, source: str) -> set:
    ids = [entry.get('id') if isinstance(entry, dict) else None for entry in entries]
    if any(i is None for i in ids):
        raise AnnotationFormatError(f'{source}: every entry of {key!r} needs an "id".')
    if len(set(ids)) != len(ids):
        raise AnnotationFormatError(f'{source}: the ids of {key!r} are not unique.')
    return set(ids)


def _require_categories(data: dict, names: Sequence[str], source: str) -> Dict[str, int]:
    """Category id of each of ``names``; names missing from the file are an error."""
    by_name = {category['name']: category['id'] for category in data['categories']}
    missing = [name for name in names if name not in by_name]
    if missing:
        hints = []
        for name in missing[:10]:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hints.append(f'{name!r}' + (f' (closest: {close[0]!r})' if close else ''))
        looks_lvis = any('frequency' in category for category in data['categories'])
        raise AnnotationFormatError(
            f'{source} lacks {len(missing)} of the {len(names)} categories the split needs: '
            f'{", ".join(hints)}{" ..." if len(missing) > 10 else ""}.'
            + (' It looks like an LVIS file; OV-COCO needs the COCO 2017 instances files.'
               if looks_lvis else ''))
    return {name: by_name[name] for name in names}


# -- the splits ---------------------------------------------------------------------------
def ov_coco_split(instances: dict, subset: str, source: str = 'COCO annotations'
                  ) -> Tuple[dict, SplitSummary]:
    """The OV-COCO file of ``subset`` ('train': base classes; 'val': base + novel) derived
    from a COCO 2017 instances file (a dict as read from json; it is not modified, and the
    result shares its kept entries)."""
    if subset not in ('train', 'val'):
        raise ValueError(f"subset must be 'train' or 'val', got {subset!r}.")
    check_instances_format(instances, source)
    groups = {'base': OV_COCO_BASE_CLASSES}
    if subset == 'val':
        groups['novel'] = OV_COCO_NOVEL_CLASSES
    ids = _require_categories(instances, [n for names in groups.values() for n in names], source)
    group_of_id = {ids[name]: group for group, names in groups.items() for name in names}

    categories = [dict(category, split=group_of_id[category['id']])
                  for category in instances['categories'] if category['id'] in group_of_id]
    annotations = [a for a in instances['annotations'] if a['category_id'] in group_of_id]
    kept_images = {a['image_id'] for a in annotations}
    images = [image for image in instances['images'] if image['id'] in kept_images]

    # the kept entries are shared with the input, which stays unmodified
    out = {key: value for key, value in instances.items()
           if key not in ('images', 'annotations', 'categories')}
    out.update(images=images, annotations=annotations, categories=categories)
    summary = SplitSummary(
        name=f'OV-COCO {subset}', images=len(images),
        images_dropped=len(instances['images']) - len(images), annotations=len(annotations),
        annotations_dropped=len(instances['annotations']) - len(annotations),
        categories={group: len(names) for group, names in groups.items()},
        group_annotations={group: sum(group_of_id[a['category_id']] == group
                                      for a in annotations) for group in groups})
    return out, summary


def ov_lvis_train_split(lvis: dict, source: str = 'LVIS annotations'
                        ) -> Tuple[dict, SplitSummary]:
    """The OV-LVIS train file: ``lvis`` (an LVIS v1 train file as read from json; it is not
    modified) without the annotations of its rare categories."""
    check_instances_format(lvis, source)
    frequency = {}
    for category in lvis['categories']:
        value = category.get('frequency')
        if value not in LVIS_FREQUENCIES:
            raise AnnotationFormatError(
                f'{source}: category {category["id"]} ({category["name"]!r}) has frequency '
                f'{value!r}, expected one of {LVIS_FREQUENCIES}; OV-LVIS needs an LVIS v1 file '
                '(lvis_v1_train.json).')
        frequency[category['id']] = value
    annotations = [a for a in lvis['annotations'] if frequency[a['category_id']] != 'r']
    out = dict(lvis, annotations=annotations)  # shares the kept entries with the input
    names = {'r': 'rare', 'c': 'common', 'f': 'frequent'}
    removed = len(lvis['annotations']) - len(annotations)
    summary = SplitSummary(
        name='OV-LVIS train', images=len(lvis['images']), images_dropped=0,
        annotations=len(annotations), annotations_dropped=removed,
        categories={names[f]: sum(v == f for v in frequency.values()) for f in LVIS_FREQUENCIES},
        group_annotations={names[f]: sum(frequency[a['category_id']] == f for a in annotations)
                           for f in LVIS_FREQUENCIES})
    return out, summary


def write_annotation_file(data: dict, path) -> str:
    """Write ``data`` as compact json (same input, same bytes); returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    tmp = path.with_name(path.name + '.part')
    tmp.write_bytes(payload)
    tmp.replace(path)
    return hashlib.sha256(payload).hexdigest()
