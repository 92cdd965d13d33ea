"""Benchmark vlkd's pretraining objectives against reference implementations, in one run.

    python tools/benchmark_vlp.py [--device cpu|cuda] [--repeats 10]

Prints a Markdown table; every row is measured in this run, vlkd and its baseline on the
same inputs and device (the functions are in :mod:`vlkd.benchmark.objectives`; the whole
suite, these rows included, is ``tools/benchmark.py``):

- ITC: ``ImageTextContrastiveLoss`` vs open_clip's ``ClipLoss``, forward + backward,
  D = 512, batch 256 and 1024;
- WRA: transport distances of a batch of cost matrices by vlkd's batched IPOT (all samples
  at once) vs POT's exact ``ot.emd2`` called per sample on its own unpadded cost matrix,
  batch 32 of up to 20 words x 36 regions and of up to 40 words x 100 regions (UNITER's
  sizes), at UNITER's 50 IPOT iterations;
- sparsemax: vlkd's sort-based function with its closed-form backward vs a plain sort-based
  implementation differentiated by autograd, forward + backward, 512 x 16384 (FDT-sized).

Times are the best of ``--repeats`` alternating runs after one warm-up; ratio = baseline /
vlkd (above 1: vlkd is faster). POT runs on the CPU whatever ``--device`` is.
"""
import argparse

import open_clip
import ot
import torch

from vlkd.benchmark.measure import machine_description
from vlkd.benchmark.objectives import bench_itc, bench_sparsemax, bench_wra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = [bench_itc(256, device, args.repeats), bench_itc(1024, device, args.repeats),
            bench_wra(device, args.repeats),
            bench_wra(device, args.repeats, max_words=40, max_regions=100),
            bench_sparsemax(device, args.repeats)]
    print(f'device: {device} ({machine_description(device)}); open_clip '
          f'{open_clip.__version__}, POT {ot.__version__}')
    print('| comparison | setting | value agreement | vlkd (ms) | baseline (ms) | '
          'baseline / vlkd |')
    print('|---|---|---|---:|---:|---:|')
    for row in rows:
        print(f"| {row['name']} | {row['setting']} | {row['agreement']} | "
              f"{1000 * row['ours']:.2f} | {1000 * row['theirs']:.2f} | "
              f"{row['theirs'] / row['ours']:.2f} |")


if __name__ == '__main__':
    main()
