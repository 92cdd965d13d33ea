"""Evaluate a checkpoint on the config's test set with mmengine's Runner.

    python tools/test.py CONFIG [CHECKPOINT] [--work-dir DIR] [--show-dir DIR]
                                           [--cfg-options KEY=VALUE ...] [--launcher pytorch]

CHECKPOINT is a .pth file or the work_dir of a training run (its newest checkpoint); leave
it out for a model that loads its own weights (a teacher's zero-shot segmentation,
configs/seg/teacher_* and maskclip_*).
"""
import argparse

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import DictAction
from vlkd.checkpoint import resolve_checkpoint
from vlkd.engine import (build_runner, default_work_dir, enable_show_dir,
                         explain_build_errors, load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config file')
    parser.add_argument('checkpoint', nargs='?', help='a checkpoint file, or a work_dir of '
                        'tools/train.py (none for models that load their own weights)')
    parser.add_argument('--work-dir', help='where the evaluation logs go (default: the '
                        "config's work_dir, else ./work_dirs/<config name>)")
    parser.add_argument('--show-dir', help="save the drawn predictions here (needs the "
                        "config's visualization hook)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. test_dataloader.batch_size=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='how the processes were started (distributed)')
    return parser.parse_args(argv)


def main(argv=None):
    """Evaluate; returns the metrics dict (e.g. {'ov_coco/bbox_AP50_novel': ...})."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    cfg.load_from = None if args.checkpoint is None else str(resolve_checkpoint(args.checkpoint))
    cfg.resume = False
    if args.show_dir:
        enable_show_dir(cfg, args.show_dir)
    runner = build_runner(cfg)
    with explain_build_errors(cfg):
        return runner.test()


if __name__ == '__main__':
    main()
