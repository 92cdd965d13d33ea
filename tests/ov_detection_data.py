"""Tiny COCO 2017 and LVIS v1 data in the official formats, for the OV-COCO / OV-LVIS tests.

The files have the fields and layout of the real ones (instances_{train,val}2017.json with
the 80 COCO categories and their ids; lvis_v1_{train,val}.json with the 1203 LVIS
categories, their frequency, the image-level negative / not-exhaustive lists and
``coco_url``), a handful of images (small jpegs with coloured rectangles where the boxes are)
and annotations chosen so that every rule of the open-vocabulary splits is exercised.
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

from mmdet.datasets import CocoDataset, LVISV1Dataset

# the category ids of COCO 2017 (1..90 with gaps), in the order of its 80 names
COCO_IDS = ([*range(1, 12)] + [*range(13, 26)] + [27, 28] + [*range(31, 45)] +
            [*range(46, 66)] + [67, 70] + [*range(72, 83)] + [*range(84, 91)])
COCO_NAMES = CocoDataset.METAINFO['classes']
COCO_NAME_TO_ID = dict(zip(COCO_NAMES, COCO_IDS))
LVIS_NAMES = LVISV1Dataset.METAINFO['classes']
LVIS_NAME_TO_ID = {name: i + 1 for i, name in enumerate(LVIS_NAMES)}

# (image id, split folder, width, height, [(class name, (x, y, w, h), iscrowd), ...])
COCO_TRAIN = [
    (1, 'train2017', 96, 72, [('person', (4, 6, 30, 50), 0), ('car', (50, 20, 40, 30), 0),
                              ('person', (40, 2, 20, 20), 1)]),
    (2, 'train2017', 80, 80, [('dog', (10, 10, 30, 30), 0), ('bicycle', (44, 40, 30, 30), 0)]),
    (3, 'train2017', 64, 80, [('cat', (5, 5, 40, 40), 0), ('bus', (10, 50, 40, 25), 0)]),
    (4, 'train2017', 72, 64, [('traffic light', (20, 10, 10, 30), 0)]),
    (5, 'train2017', 64, 64, []),
    (6, 'train2017', 88, 64, [('bench', (8, 30, 60, 25), 0), ('stop sign', (60, 4, 20, 20), 0)]),
]
COCO_VAL = [
    (11, 'val2017', 96, 72, [('person', (6, 8, 28, 48), 0), ('dog', (50, 30, 36, 30), 0)]),
    (12, 'val2017', 80, 64, [('umbrella', (10, 4, 50, 30), 0), ('cake', (20, 40, 30, 20), 0)]),
    (13, 'val2017', 64, 64, [('teddy bear', (10, 10, 40, 40), 0)]),
    (14, 'val2017', 72, 72, [('bicycle', (4, 4, 60, 50), 0)]),
]
# LVIS: classes of each frequency group (the real LVIS v1 frequencies)
LVIS_TRAIN = [
    (101, 'train2017', 96, 72, [('applesauce', (4, 6, 30, 30)), ('apple', (50, 20, 30, 30)),
                                ('aerosol_can', (10, 40, 20, 28))]),
    (102, 'train2017', 80, 80, [('banjo', (10, 10, 40, 50))]),
    (103, 'train2017', 64, 80, [('person', (5, 5, 40, 60)), ('airplane', (8, 60, 40, 16))]),
    (104, 'train2017', 72, 64, [('alcohol', (20, 10, 20, 30)), ('banjo', (44, 20, 20, 30)),
                                ('apple', (4, 4, 14, 14))]),
    (105, 'train2017', 64, 64, []),
]
LVIS_VAL = [
    (201, 'val2017', 96, 72, [('applesauce', (6, 8, 28, 28)), ('apple', (50, 30, 30, 30))]),
    (202, 'train2017', 80, 64, [('banjo', (10, 4, 50, 40)), ('person', (62, 20, 16, 40))]),
    (203, 'val2017', 72, 72, [('aerosol_can', (4, 4, 30, 50)), ('airplane', (40, 40, 30, 20))]),
]
# image-level LVIS fields of the val images: verified absent, and not exhaustively annotated
LVIS_VAL_NEG = {201: ['banjo', 'airplane'], 202: ['applesauce', 'apple'], 203: ['person']}
LVIS_VAL_NOT_EXHAUSTIVE = {201: ['apple'], 202: [], 203: []}


def _polygon(box):
    x, y, w, h = box
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _write_image(path: Path, width: int, height: int, boxes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
    for x, y, w, h in boxes:
        pixels[y:y + h, x:x + w] = rng.integers(80, 255, size=3, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def _file_name(image_id: int) -> str:
    return f'{image_id:012d}.jpg'


def write_coco_2017(root) -> Path:
    """COCO 2017 layout under ``root``: annotations/instances_{train,val}2017.json,
    train2017/*.jpg, val2017/*.jpg."""
    root = Path(root)
    categories = [dict(supercategory='object', id=COCO_NAME_TO_ID[name], name=name)
                  for name in COCO_NAMES]
    next_ann_id = 1000
    for split, images in (('train', COCO_TRAIN), ('val', COCO_VAL)):
        records, annotations = [], []
        for image_id, folder, width, height, objects in images:
            records.append(dict(license=1, file_name=_file_name(image_id),
                                coco_url=f'http://images.cocodataset.org/{folder}/'
                                         f'{_file_name(image_id)}',
                                height=height, width=width, date_captured='2013-11-14 11:18:45',
                                flickr_url='http://farm.staticflickr.com/x.jpg', id=image_id))
            for name, box, iscrowd in objects:
                annotations.append(dict(segmentation=_polygon(box), area=float(box[2] * box[3]),
                                        iscrowd=iscrowd, image_id=image_id,
                                        bbox=[float(v) for v in box],
                                        category_id=COCO_NAME_TO_ID[name], id=next_ann_id))
                next_ann_id += 1
            _write_image(root / folder / _file_name(image_id), width, height,
                         [box for _, box, _ in objects], image_id)
        data = dict(info=dict(description='COCO 2017 Dataset (vlkd test fixture)',
                              version='1.0', year=2017),
                    licenses=[dict(url='http://creativecommons.org/licenses/by/2.0/', id=1,
                                   name='Attribution License')],
                    images=records, annotations=annotations, categories=categories)
        path = root / 'annotations' / f'instances_{split}2017.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return root


def lvis_categories():
    """The 1203 LVIS v1 categories with their frequency (from vlkd's list) and the other
    fields of the official files (synset, synonyms, def, image and instance counts)."""
    from vlkd.datasets.ov_splits import LVIS_V1_FREQUENCY
    counts = {'r': 5, 'c': 50, 'f': 500}
    return [dict(id=i + 1, name=name, synset=f'{name.lower()}.n.01', synonyms=[name],
                 **{'def': f'a {name}'}, frequency=frequency,
                 image_count=counts[frequency], instance_count=2 * counts[frequency])
            for i, (name, frequency) in enumerate(zip(LVIS_NAMES, LVIS_V1_FREQUENCY))]


def write_lvis_v1(root) -> Path:
    """LVIS v1 layout under ``root``: annotations/lvis_v1_{train,val}.json and the images
    their coco_url names (train2017/*.jpg, val2017/*.jpg)."""
    root = Path(root)
    categories = lvis_categories()
    next_ann_id = 5000
    for split, images in (('train', LVIS_TRAIN), ('val', LVIS_VAL)):
        records, annotations = [], []
        for image_id, folder, width, height, objects in images:
            neg = LVIS_VAL_NEG.get(image_id, []) if split == 'val' else []
            not_exhaustive = LVIS_VAL_NOT_EXHAUSTIVE.get(image_id, []) if split == 'val' else []
            records.append(dict(
                date_captured='2013-11-14 11:18:45', neg_category_ids=[
                    LVIS_NAME_TO_ID[n] for n in neg],
                id=image_id, license=1, height=height, width=width,
                flickr_url='http://farm.staticflickr.com/x.jpg',
                coco_url=f'http://images.cocodataset.org/{folder}/{_file_name(image_id)}',
                not_exhaustive_category_ids=[LVIS_NAME_TO_ID[n] for n in not_exhaustive]))
            for name, box in objects:
                annotations.append(dict(area=float(box[2] * box[3]), id=next_ann_id,
                                        segmentation=_polygon(box), image_id=image_id,
                                        bbox=[float(v) for v in box],
                                        category_id=LVIS_NAME_TO_ID[name]))
                next_ann_id += 1
            _write_image(root / folder / _file_name(image_id), width, height,
                         [box for _, box in objects], image_id)
        data = dict(info=dict(description='LVIS v1 (vlkd test fixture)', version='1.0',
                              year=2020),
                    licenses=[dict(url='http://creativecommons.org/licenses/by/2.0/', id=1,
                                   name='Attribution License')],
                    images=records, annotations=annotations, categories=categories)
        path = root / 'annotations' / f'lvis_v1_{split}.json'
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return root


def write_split_files(coco_root=None, lvis_root=None) -> None:
    """Write the OV split files next to the official ones, as tools/make_ov_split.py does."""
    from vlkd.datasets.ov_splits import (ov_coco_split, ov_lvis_train_split,
                                         read_annotation_file, write_annotation_file)
    if coco_root is not None:
        ann = Path(coco_root) / 'annotations'
        for subset, out in (('train', 'instances_train2017_ov_base.json'),
                            ('val', 'instances_val2017_ov.json')):
            data = read_annotation_file(ann / f'instances_{subset}2017.json', 'COCO')
            write_annotation_file(ov_coco_split(data, subset)[0], ann / out)
    if lvis_root is not None:
        ann = Path(lvis_root) / 'annotations'
        data = read_annotation_file(ann / 'lvis_v1_train.json', 'LVIS')
        write_annotation_file(ov_lvis_train_split(data)[0], ann / 'lvis_v1_train_ov_base.json')
