"""The vlkd benchmark suite: one table of ratios, every row measured in this run against its
peer or baseline, on the same inputs and device, with the peak memory of both sides.

    python tools/benchmark.py [--device cpu|cuda] [--repeats 5] [--quick] [--data-root DIR]

Rows (baseline / vlkd time: above 1, vlkd is faster; below 1, it is slower):

- ITC loss vs open_clip's ``ClipLoss``, forward + backward;
- batched IPOT vs a per-sample POT ``ot.emd2`` loop, batch 32, at 20 words x 36 regions and
  at UNITER's 40 x 100 (on CUDA: the Triton kernel, then the PyTorch loop);
- sparsemax (closed-form backward) vs a plain sort-based one through autograd;
- proposal embedding by the teacher, batched crops and dense RoIAlign, vs a naive
  one-crop-at-a-time loop (time per region);
- ViLD (text + cached image distillation) training step vs the plain mmdet Faster R-CNN step;
- the CLIP recipe's training iteration through vlkd / mmengine vs the same model in a plain
  PyTorch loop (the framework's overhead);
  (these two: the fastest step of each, the steps taking turns; the ratio of the medians in
  the setting column)
- a ViT CLIP training step vs the machine's float32 ``torch.mm`` throughput measured in the
  run: the time the step's FLOPs (counted by FlopCounterMode) take at the mm rate over the
  step's time, i.e. the fraction of the physical limit achieved.

``--quick`` runs every row at toy sizes (a smoke test: the ratios mean little). The
functions are in :mod:`vlkd.benchmark`; ``tools/benchmark_vlp.py`` and
``tools/benchmark_det.py`` print longer tables of the objective and detection parts. See
docs/benchmarks.md for the recorded tables.
"""
import argparse
import contextlib
import datetime
import os
import sys
import tempfile
import time

import torch

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.logging import MMLogger

from vlkd.benchmark.detection import (STUDENTS, TEACHERS, bench_embedding, bench_training,
                                      shapes_data_root)
from vlkd.benchmark.measure import MIB, machine_description
from vlkd.benchmark.objectives import bench_itc, bench_sparsemax, bench_wra
from vlkd.benchmark.training import TINY_VIT, bench_clip_recipe, bench_vit_matmul
from vlkd.vlp.objectives.wra import triton_available

# (full, quick) settings of each part
SIZES = dict(
    itc=([256, 1024], [64]),
    sparsemax=(dict(rows=512, columns=16384), dict(rows=64, columns=1024)),
    embedding=(None, dict(TEACHERS['shapes'], image_size=64, images=2, naive_images=1)),
    proposals=(32, 3),
    vild=(dict(steps=10, num_images=16, batch_size=None), dict(steps=1, num_images=4,
                                                                batch_size=2)),
    clip=(dict(steps=20, batch_size=None), dict(steps=2, batch_size=4, num_batches=2)),
)
VIT = dict(cpu=(dict(model_name='ViT-B-32', batch=8, matmul_size=2048),
                dict(model_name=None, model_cfg=TINY_VIT, batch=4, matmul_size=256)),
           cuda=(dict(model_name='ViT-B-16', batch=64, matmul_size=8192),
                 dict(model_name=None, model_cfg=TINY_VIT, batch=4, matmul_size=256)))
VILD = [STUDENTS[0], next(s for s in STUDENTS if s[1] == 'vild_r18_fpn_shapes.py')]


def embedding_rows(rows: list) -> list:
    """Suite rows from :func:`bench_embedding`'s: each batched way against the naive loop,
    as time per region."""
    naive = rows[0]
    out = []
    for row in rows[1:]:
        way = row['way'].split(' (')[0]
        out.append(dict(
            name=f'region embedding: {way} vs naive crop loop',
            setting=f"{row['setting']}; ms per region", agreement=f"cosine {row['agreement']}",
            # batched crops embed what the loop embeds; dense is another quantity by design
            passed=row['cosine'] >= 0.99 if way.startswith('crops') else None,
            ours=1 / row['rate'], theirs=1 / naive['rate'], ours_memory=row['memory'],
            theirs_memory=naive['memory']))
    return out


def measure_rows(device: torch.device, quick: bool, repeats: int, data_root, progress) -> list:
    """Every row of the table, in order; ``progress(message)`` is told of each part."""
    size = {key: value[quick] for key, value in SIZES.items()}
    timing = dict(min_seconds=0.0) if quick else {}
    repeats = min(2, repeats) if quick else repeats
    rows = []
    for batch in size['itc']:
        progress(f'ITC, batch {batch}')
        rows.append(bench_itc(batch, device, repeats, **timing))
    # on CUDA: the Triton kernel (the default there) and the PyTorch loop
    backends = ['auto', 'torch'] if device.type == 'cuda' and triton_available() else ['auto']
    for backend in backends:
        for words, regions in ((20, 36), (40, 100)):
            progress(f'IPOT, {words} x {regions}, {backend}')
            rows.append(bench_wra(device, repeats, max_words=words, max_regions=regions,
                                  backend=backend, **timing))
    progress('sparsemax')
    rows.append(bench_sparsemax(device, repeats, **size['sparsemax'], **timing))
    progress('region embedding')
    rows += embedding_rows(bench_embedding('shapes', device, size['proposals'], repeats,
                                           spec=size['embedding']))
    with tempfile.TemporaryDirectory() as tmp:
        root = shapes_data_root(data_root, size['vild']['num_images'], tmp)
        progress('ViLD vs plain detector steps')
        (plain, vild), info = bench_training(device, proposals=size['proposals'],
                                             data_root=root, students=VILD, **size['vild'])
        rows.append(dict(
            name='ViLD (distilled) student step vs plain mmdet Faster R-CNN step',
            setting=f"{VILD[1][1]} vs {VILD[0][1]}, batch {info['batch']}, fastest of "
                    f"{size['vild']['steps']} steps in turns (medians: "
                    f"{plain['step'] / vild['step']:.2f})",
            agreement='-', passed=None, ours=vild['spread'][0], theirs=plain['spread'][0],
            ours_memory=vild['memory'], theirs_memory=plain['memory']))
        progress('CLIP recipe vs plain loop')
        rows.append(bench_clip_recipe(device, data_root=root, **size['clip']))
    progress('ViT step vs torch.mm')
    rows.append(bench_vit_matmul(device, repeats, **VIT[device.type][quick], **timing))
    return rows


def format_memory(value) -> str:
    return '-' if value is None else f'{value / MIB:.1f}'


def format_ms(seconds: float) -> str:
    ms = 1000 * seconds
    return f'{ms:.3g}' if ms < 100 else f'{ms:.0f}'


def print_table(rows: list, header: str) -> None:
    print(header)
    print()
    print('| comparison | setting | value check | vlkd (ms) | baseline (ms) | '
          'baseline / vlkd | peak MiB vlkd | peak MiB baseline |')
    print('|---|---|---|---:|---:|---:|---:|---:|')
    for row in rows:
        check = {True: ' (ok)', False: ' (FAILED)', None: ''}[row['passed']]
        print(f"| {row['name']} | {row['setting']} | {row['agreement']}{check} | "
              f"{format_ms(row['ours'])} | {format_ms(row['theirs'])} | "
              f"{row['theirs'] / row['ours']:.2f} | {format_memory(row['ours_memory'])} | "
              f"{format_memory(row['theirs_memory'])} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--repeats', type=int, default=5,
                        help='at least this many alternating runs per row, more for fast rows '
                             '(until 2 s); the best run is kept')
    parser.add_argument('--quick', action='store_true',
                        help='every row at toy sizes, in seconds: a smoke test')
    parser.add_argument('--data-root', default=None,
                        help='vlkd-shapes root for the training rows (default: data/shapes if '
                             'it exists, else a small set generated in a temporary folder)')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device')
    load_before, started = os.getloadavg(), time.perf_counter()

    def progress(message):
        print(f'[{time.perf_counter() - started:6.0f} s] {message}', file=sys.stderr,
              flush=True)

    # libraries' prints (pycocotools) go to stderr with the progress; the table alone to stdout
    with contextlib.redirect_stdout(sys.stderr):
        # mmengine's log handlers bind the stdout of the moment they are made: make them here
        MMLogger.get_instance('benchmark', log_level='WARNING')
        rows = measure_rows(device, args.quick, args.repeats, args.data_root, progress)
    load_after = os.getloadavg()
    progress('done')

    command = 'python tools/benchmark.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')
    header = (f'`{command.strip()}` on {now} UTC, {time.perf_counter() - started:.0f} s\n\n'
              f'device: {device}; {machine_description(device)}; load average '
              f'{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end')
    if args.quick:
        header += '\n\n**--quick: toy sizes, a smoke test; the ratios mean little.**'
    print_table(rows, header)
    return rows


if __name__ == '__main__':
    main()
