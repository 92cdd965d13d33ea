"""Train a model from a config with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp]
                                 [--cfg-options KEY=VALUE ...] [--launcher pytorch]
    tools/dist_train.sh CONFIG NUM_GPUS [ARGS]     # several GPUs, via torchrun
"""
import argparse

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import DictAction
from vlkd.engine import (build_runner, default_work_dir, enable_amp, enable_resume,
                         explain_build_errors, load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: the '
                        "config's work_dir, else ./work_dirs/<config name>)")
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume from CHECKPOINT, or without a value from the newest '
                        'checkpoint in the work_dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on a GPU, bfloat16 on the CPU')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_cfg.max_iters=100 '
                        'optim_wrapper.optimizer.lr=0.01')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='how the processes were started (distributed)')
    return parser.parse_args(argv)


def main(argv=None):
    """Train; returns the Runner (its model holds the trained weights)."""
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if args.amp:
        enable_amp(cfg)
    if args.resume is not None:
        enable_resume(cfg, args.resume)
    runner = build_runner(cfg)
    with explain_build_errors(cfg):
        runner.train()
    return runner


if __name__ == '__main__':
    main()
