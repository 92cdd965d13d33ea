"""Reproduce the vlkd-shapes segmentation table of configs/seg/README.md.

    python tools/seg_shapes_table.py [--rows gt combined ...] [--seeds 0 1 2] \
        [--out work_dirs/seg/shapes/table.md] [--dry-run]

Runs the commands of each row one at a time (``OMP_NUM_THREADS=1 nice -n 10``): students
are trained with ``--cfg-options randomness.seed=S`` into ``work_dirs/seg/shapes/ROW/seedS``
and tested on the test split with tools/test.py; the teachers' zero-shot rows are tested
once (they are deterministic). A run whose test results exist is not repeated. The table
gives seen / unseen mIoU, hIoU and mIoU as mean ± standard deviation over the seeds, and
the mean wall time of the runs. ``--dry-run`` prints the commands only.

Needs the teachers: ``python tools/train.py configs/pretrain/clip_shapes_tiny.py`` and, for
the UniCL rows, ``python tools/train.py configs/pretrain/unicl_shapes_tiny.py``.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mmengine.config import Config

STUDENT = 'configs/seg/deeplabv3plus_r18_{}_shapes.py'
TRUNK_STUDENT = 'configs/seg/upernet_clip_trunk_{}_shapes.py'
# (key, description, config, trained); students are trained once per seed
ROWS = [
    ('teacher', 'CLIP teacher zero-shot (sliding window)',
     'configs/seg/teacher_zero_shot_shapes.py', False),
    ('teacher_maskclip', 'CLIP teacher zero-shot (MaskCLIP dense)',
     'configs/seg/teacher_maskclip_shapes.py', False),
    ('gt', 'student: ground truth of the seen classes', STUDENT.format('gt'), True),
    ('pseudo', 'student: pseudo labels only', STUDENT.format('pseudo'), True),
    ('feat', 'student: feature distillation only', STUDENT.format('feat'), True),
    ('combined', 'student: ground truth + pseudo labels + feature distillation',
     STUDENT.format('combined'), True),
    ('self_training', 'combined student + one self-training round',
     STUDENT.format('self_training'), True),
    ('oracle', 'oracle: ground truth of all classes', STUDENT.format('oracle'), True),
    ('unicl_teacher', 'UniCL (VLP) teacher zero-shot (sliding window)',
     'configs/seg/teacher_zero_shot_unicl_shapes.py', False),
    ('unicl_combined', 'student of the UniCL teacher: combined losses',
     STUDENT.format('combined_unicl'), True),
    ('trunk_gt', "student on the teacher's CLIP ResNet trunk: ground truth of the seen classes",
     TRUNK_STUDENT.format('gt'), True),
    ('trunk_combined', "student on the teacher's trunk: ground truth + pseudo labels + feature "
     'distillation', TRUNK_STUDENT.format('combined'), True),
    ('trunk_gt_pseudo', "student on the teacher's trunk: ground truth + pseudo labels",
     TRUNK_STUDENT.format('gt_pseudo'), True),
    ('trunk_oracle', "oracle on the teacher's trunk: ground truth of all classes",
     TRUNK_STUDENT.format('oracle'), True),
]
METRICS = ('mIoU_seen', 'mIoU_unseen', 'hIoU', 'mIoU')
WORK_ROOT = Path('work_dirs/seg/shapes')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', nargs='+', choices=[r[0] for r in ROWS],
                        default=[r[0] for r in ROWS])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--out', default=str(WORK_ROOT / 'table.md'))
    parser.add_argument('--dry-run', action='store_true')
    return parser.parse_args(argv)


def run(command, dry_run: bool) -> float:
    """Run a command niced with one thread; returns its wall time in seconds."""
    print('$', ' '.join(shlex.quote(c) for c in command), flush=True)
    if dry_run:
        return 0.0
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS='1')
    subprocess.run(['nice', '-n', '10', sys.executable] + command, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.time() - start


def combined_iters() -> int:
    """Training iterations of the combined student (its last checkpoint's number)."""
    return Config.fromfile(STUDENT.format('combined')).train_cfg.max_iters


def test_metrics(work_dir: Path):
    """The metrics of the newest tools/test.py run in ``work_dir``, or None."""
    logs = sorted(work_dir.glob('test/*/*.json'))
    return json.loads(logs[-1].read_text()) if logs else None


def run_row(key: str, config: str, trained: bool, seed, dry_run: bool) -> dict:
    """Train (students) and test one run; returns its metrics and wall time."""
    work_dir = WORK_ROOT / key / (f'seed{seed}' if trained else 'test_only')
    metrics = test_metrics(work_dir)
    if metrics is not None:
        return dict(metrics, seconds=json.loads((work_dir / 'seconds.json').read_text()))
    seconds = 0.0
    checkpoint = []
    if trained:
        options = [f'randomness.seed={seed}']
        if key == 'self_training':
            masks = work_dir / 'masks'
            combined = WORK_ROOT / 'combined' / f'seed{seed}'
            seconds += run(['tools/relabel_seg.py', STUDENT.format('combined'), str(combined),
                            '--out-dir', str(masks)], dry_run)
            options += [f'train_dataloader.dataset.data_prefix.seg_map_path={masks}',
                        f'load_from={combined}/iter_{combined_iters()}.pth']
        seconds += run(['tools/train.py', config, '--work-dir', str(work_dir),
                        '--cfg-options'] + options, dry_run)
        checkpoint = [str(work_dir)]
    seconds += run(['tools/test.py', config] + checkpoint +
                   ['--work-dir', str(work_dir / 'test')], dry_run)
    if dry_run:
        return {}
    (work_dir / 'seconds.json').write_text(json.dumps(seconds))
    return dict(test_metrics(work_dir), seconds=seconds)


def summary(values) -> str:
    if len(values) == 1:
        return f'{values[0]:.1f}'
    return f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'


def main(argv=None):
    args = parse_args(argv)
    lines = ['| row | ' + ' | '.join(METRICS) + ' | runs | minutes per run |',
             '|---|' + '---:|' * (len(METRICS) + 2)]
    for key, description, config, trained in ROWS:
        if key not in args.rows:
            continue
        results = [run_row(key, config, trained, seed, args.dry_run)
                   for seed in (args.seeds if trained else [None])]
        if args.dry_run:
            continue
        cells = [summary([r[m] for r in results]) for m in METRICS]
        minutes = statistics.mean(r['seconds'] for r in results) / 60
        lines.append(f'| {description} | ' + ' | '.join(cells) +
                     f' | {len(results)} | {minutes:.1f} |')
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text('\n'.join(lines) + '\n')
        print('\n'.join(lines), flush=True)


if __name__ == '__main__':
    main()
