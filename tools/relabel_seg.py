"""Self-training: a trained segmenter relabels the unlabelled pixels of its training set.

    python tools/relabel_seg.py CONFIG CHECKPOINT --out-dir DIR [--score-thr 0.5] \
        [--classes "star,heart,crescent"]

The training set of CONFIG is read without augmentation (the test pipeline); pixels with a
ground-truth label keep it, the others take the model's prediction where it is one of
``--classes`` (default: the classes the training set ignores, i.e. the unseen ones) with a
probability of at least ``--score-thr``. The masks are written to DIR in the dataset's
format; train again with a config whose training set reads them with no ignored classes
(see configs/seg/deeplabv3plus_r18_self_training_shapes.py).
"""
import argparse
import sys
from pathlib import Path

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import DATASETS, MODELS
from vlkd.seg.self_training import relabel_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config the model was trained with')
    parser.add_argument('checkpoint', help='a checkpoint file or the work_dir of the run')
    parser.add_argument('--out-dir', required=True, help='where the new masks go')
    parser.add_argument('--score-thr', type=float, default=0.5,
                        help='minimum probability of a pseudo label')
    parser.add_argument('--classes', help='comma-separated classes a pseudo label may take '
                        "(default: the training set's ignore_classes)")
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Relabel; returns the number of pixels that got a pseudo label."""
    args = parse_args(argv)
    if not Path(args.config).is_file():
        sys.exit(f'error: config {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'vlkd'))
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg.pipeline = cfg.test_dataloader.dataset.pipeline
    dataset = DATASETS.build(dataset_cfg)
    if args.classes is not None:
        pseudo_classes = [name.strip() for name in args.classes.split(',')]
    else:
        pseudo_classes = list(getattr(dataset, 'ignore_classes', []))
    if not pseudo_classes:
        sys.exit('error: the training set ignores no class; name the classes a pseudo label '
                 'may take with --classes')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(resolve_checkpoint(args.checkpoint)), map_location='cpu',
                    strict=True, logger='silent')
    model.set_test_vocabulary(list(dataset.metainfo['classes']))
    added = relabel_dataset(model.to(args.device), dataset, args.out_dir, pseudo_classes,
                            args.score_thr)
    print(f'wrote {len(dataset)} masks to {args.out_dir}; {added} pixels got a pseudo label '
          f'among {pseudo_classes}')
    return added


if __name__ == '__main__':
    main()
