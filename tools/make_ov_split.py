"""Derive the open-vocabulary annotation files of OV-COCO and OV-LVIS from the official ones.

    python tools/make_ov_split.py coco data/coco/annotations   # COCO 2017 -> OV-COCO
    python tools/make_ov_split.py lvis data/lvis/annotations   # LVIS v1   -> OV-LVIS

coco: reads instances_train2017.json and instances_val2017.json, writes
    instances_train2017_ov_base.json   48 base categories, their annotations, the images
                                       holding at least one of them
    instances_val2017_ov.json          the 65 base + novel categories, likewise
lvis: reads lvis_v1_train.json, writes
    lvis_v1_train_ov_base.json         without the annotations of the 337 rare categories
    (models are evaluated on the unchanged lvis_v1_val.json)

The class lists and the rules are those of vlkd.datasets.ov_splits (with their sources). The
output is deterministic: the counts and the sha256 of every file written are printed, so two
runs (or two machines) can be compared. --out-dir writes elsewhere than the input folder.
"""
import argparse
import sys
from pathlib import Path

import vlkd  # noqa: F401  (installs the compatibility layer before mmdet is imported)
from vlkd.datasets.ov_splits import (AnnotationFormatError, ov_coco_split, ov_lvis_train_split,
                                     read_annotation_file, write_annotation_file)

COCO_FILES = {  # input -> (output, subset)
    'instances_train2017.json': ('instances_train2017_ov_base.json', 'train'),
    'instances_val2017.json': ('instances_val2017_ov.json', 'val'),
}
LVIS_FILES = {'lvis_v1_train.json': 'lvis_v1_train_ov_base.json'}
DOWNLOAD_HINT = {
    'coco': 'download annotations_trainval2017.zip from https://cocodataset.org/#download and '
            'unzip it into the data root (it holds annotations/instances_*2017.json)',
    'lvis': 'download lvis_v1_train.json.zip from https://www.lvisdataset.org/dataset and '
            'unzip it into this folder',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=['coco', 'lvis'], help='which split to derive')
    parser.add_argument('ann_dir', help='folder holding the official annotation files')
    parser.add_argument('--out-dir', help='where to write the split files (default: ann_dir)')
    return parser.parse_args(argv)


def make_split(dataset: str, ann_dir, out_dir=None) -> dict:
    """Write the split files of ``dataset`` ('coco' or 'lvis'); returns {output path: sha256}.
    Prints what each file keeps and drops."""
    ann_dir = Path(ann_dir)
    out_dir = Path(out_dir) if out_dir is not None else ann_dir
    if not ann_dir.is_dir():
        raise FileNotFoundError(f'{ann_dir} is not a folder; {DOWNLOAD_HINT[dataset]}.')
    jobs = {name: out for name, (out, _) in COCO_FILES.items()} if dataset == 'coco' \
        else dict(LVIS_FILES)
    missing = [name for name in jobs if not (ann_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f'{ann_dir} lacks {", ".join(missing)}; '
                                f'{DOWNLOAD_HINT[dataset]}.')
    written = {}
    for name, out_name in jobs.items():
        source = ann_dir / name
        data = read_annotation_file(source, f'{dataset.upper()} {name}')
        if dataset == 'coco':
            split, summary = ov_coco_split(data, COCO_FILES[name][1], source=str(source))
        else:
            split, summary = ov_lvis_train_split(data, source=str(source))
        del data
        target = out_dir / out_name
        written[str(target)] = write_annotation_file(split, target)
        print('\n'.join(summary.lines()))
        print(f'  wrote {target}  sha256 {written[str(target)]}')
    if dataset == 'coco':
        print('(OVR-CNN reports 107,761 train and 4,836 val images for this split of COCO 2017.)')
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        make_split(args.dataset, args.ann_dir, args.out_dir)
    except (FileNotFoundError, AnnotationFormatError) as err:
        print(f'make_ov_split: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
