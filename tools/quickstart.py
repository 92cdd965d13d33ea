"""The quickstart: open-vocabulary detection end to end on vlkd-shapes, on a CPU.

Stages (each one a command you can also run by hand; finished stages are reused):
  1. generate vlkd-shapes                python tools/make_shapes.py --out data/shapes
  2. pretrain the CLIP teacher           python tools/train.py configs/quickstart/teacher.py
  3. train ViLD-text (base boxes)        python tools/train.py configs/quickstart/vild_text.py
  4. train ViLD (text + distillation)    python tools/train.py configs/quickstart/vild.py
  5. evaluate both on the test split     python tools/test.py CONFIG CHECKPOINT
and print base / novel / all AP50 with the wall time of each stage.
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DATA = 'data/shapes'
STUDENTS = [('ViLD-text', 'configs/quickstart/vild_text.py', 'work_dirs/quickstart/vild_text'),
            ('ViLD', 'configs/quickstart/vild.py', 'work_dirs/quickstart/vild')]


def run(cmd, log_file):
    """Run a stage's command from the repository root, its output going to ``log_file``."""
    print(f'$ {" ".join(shlex.quote(c) for c in cmd)}', flush=True)
    start = time.time()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, 'w') as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = Path(log_file).read_text().splitlines()[-30:]
        sys.exit('\n'.join(tail) + f'\nstage failed (exit {proc.returncode}); full log: '
                 f'{log_file}')
    return time.time() - start


def finished(work_dir) -> bool:
    """A training stage is done when its work_dir names a last checkpoint that exists."""
    pointer = ROOT / work_dir / 'last_checkpoint'
    return pointer.is_file() and Path(pointer.read_text().strip()).is_file()


def train(config, work_dir, force, logs):
    if finished(work_dir) and not force:
        print(f'reusing {work_dir} (delete it or pass --force to retrain)')
        return 0.0
    return run([PYTHON, 'tools/train.py', config, '--work-dir', work_dir],
               logs / f'train_{Path(config).stem}.log')


def evaluate(config, work_dir, logs):
    """Test the last checkpoint of ``work_dir``; returns (metrics dict, seconds)."""
    checkpoint = Path(work_dir, 'last_checkpoint').read_text().strip()
    eval_dir = f'{work_dir}/test'
    seconds = run([PYTHON, 'tools/test.py', config, checkpoint, '--work-dir', eval_dir],
                  logs / f'test_{Path(config).stem}.log')
    results = sorted(glob.glob(str(ROOT / eval_dir / '*' / '*.json')), key=os.path.getmtime)
    if not results:
        sys.exit(f'no metrics json was written under {eval_dir}')
    return json.loads(Path(results[-1]).read_text()), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--force', action='store_true', help='retrain finished stages')
    args = parser.parse_args(argv)
    logs = ROOT / 'work_dirs/quickstart/logs'
    total_start = time.time()
    times = {}
    times['generate shapes'] = run([PYTHON, 'tools/make_shapes.py', '--out', DATA, '--seed', '0'],
                                   logs / 'make_shapes.log')
    times['pretrain teacher'] = train('configs/quickstart/teacher.py',
                                      'work_dirs/quickstart/teacher', args.force, logs)
    rows = []
    for name, config, work_dir in STUDENTS:
        times[f'train {name}'] = train(config, work_dir, args.force, logs)
        metrics, seconds = evaluate(config, work_dir, logs)
        times[f'test {name}'] = seconds
        rows.append((name, metrics))

    lines = ['| student | AP50 base | AP50 novel | AP50 all | AP novel |',
             '|---|---|---|---|---|']
    for name, m in rows:
        lines.append(f"| {name} | {100 * m['ov_coco/bbox_AP50_base']:.1f} "
                     f"| {100 * m['ov_coco/bbox_AP50_novel']:.1f} "
                     f"| {100 * m['ov_coco/bbox_AP50']:.1f} "
                     f"| {100 * m['ov_coco/bbox_AP_novel']:.1f} |")
    lines += ['', '| stage | wall time (s) |', '|---|---|']
    lines += [f'| {stage} | {seconds:.0f} |' for stage, seconds in times.items()]
    lines.append(f'| total | {time.time() - total_start:.0f} |')
    table = '\n'.join(lines)
    print('\nvlkd quickstart: open-vocabulary detection on vlkd-shapes (test split)\n')
    print(table)
    out = ROOT / 'work_dirs/quickstart/results.md'
    out.write_text(table + '\n')
    print(f'\n(also written to {out.relative_to(ROOT)}; logs in {logs.relative_to(ROOT)})')


if __name__ == '__main__':
    main()
