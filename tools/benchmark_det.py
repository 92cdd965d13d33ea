"""Speed of open-vocabulary detection distillation, every baseline measured in the same run.

    python tools/benchmark_det.py [--device cpu|cuda] [--part all|embed|train]
                                  [--teachers shapes[,vit-b-32]] [--steps 20]

Prints Markdown tables:

(a) Proposal embedding throughput: the same proposals (32 random boxes per image, ViLD's
    1x + 1.5x scales) embedded by the same teacher three ways:

    - naive loop: one crop at a time (slice the box out of the image, resize it to the tower's
      input, one forward pass per crop and scale), the straightforward way;
    - crops: :meth:`Teacher.encode_regions`, RoIAlign crops in batches (the region cache's
      ``region_source='crops'``);
    - dense: :meth:`Teacher.encode_regions_dense`, one forward pass per image and RoIAlign
      on the dense map (``region_source='dense'``).

    The three ways take turns in each of ``--repeats`` rounds (a shared machine's load falls
    on all of them alike); the fastest round of each way is reported.

    Teachers (random weights: the speed does not depend on them): ``shapes``, the quickstart
    teacher's architecture (CLIP ResNet at 32 px, 128-d) on 128 px vlkd-shapes images;
    ``vit-b-32``, open_clip ViT-B/32 (224 px) on 448 px images. The agreement columns are
    the mean cosine similarity between the embeddings of two ways; with random weights they
    only show that the ways embed the same boxes (crops vs naive: interpolation and border
    padding differ; dense vs crops: a different computation, the point of the fast path).

(b) Training step time of each ViLD student against the plain mmdet Faster R-CNN with the
    same backbone, neck, RPN, sampling and batch (configs/vild/*_r18_fpn_shapes.py, batch 8
    of 128 px vlkd-shapes images): forward, backward and optimizer step of
    ``model.train_step`` on batches prepared in memory. The distilled students read their
    targets from a region cache (32 proposals per image) built before timing. Steps of the
    models alternate, so a shared machine's load falls on all of them alike; the median step
    is reported with the fastest step (the least disturbed by other jobs).

Images come from ``--data-root``, else data/shapes when it exists (``python
tools/make_shapes.py --out data/shapes``), else a small vlkd-shapes set generated in a
temporary folder.
"""
import argparse
import os
import tempfile
import time

import torch

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.logging import MMLogger

from vlkd.benchmark.detection import (  # noqa: F401  (names the tests use)
    STUDENTS, TEACHERS, bench_embedding, bench_training, naive_embeddings, shapes_data_root)
from vlkd.benchmark.measure import machine_description


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--part', choices=['all', 'embed', 'train'], default='all')
    parser.add_argument('--teachers', default='shapes',
                        help=f'comma-separated, of {sorted(TEACHERS)}')
    parser.add_argument('--proposals', type=int, default=32, help='boxes per image')
    parser.add_argument('--repeats', type=int, default=3,
                        help='rounds of (a); the fastest round of each way is reported')
    parser.add_argument('--steps', type=int, default=20, help='timed steps per model (b)')
    parser.add_argument('--train-images', type=int, default=64,
                        help='images cached and cycled through in (b)')
    parser.add_argument('--data-root', default=None,
                        help='vlkd-shapes root for (b) (default: data/shapes if it exists, '
                             'else a set generated in a temporary folder)')
    args = parser.parse_args(argv)
    teachers = [name.strip() for name in args.teachers.split(',')]
    unknown = [name for name in teachers if name not in TEACHERS]
    if unknown:
        parser.error(f'--teachers: unknown {unknown}; choose among {sorted(TEACHERS)}')
    device = torch.device(args.device)
    MMLogger.get_instance('benchmark_det', log_level='WARNING')  # no init / build messages
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f'device: {device} ({machine_description(device)}); load average '
          f'{load_before[0]:.1f} at the start')

    if args.part in ('all', 'embed'):
        print('\n(a) proposal embedding throughput (regions/s; each region at 2 scales)\n')
        print('| teacher and setting | way | regions/s | vs naive loop | mean cosine |')
        print('|---|---|---:|---:|---|')
        for name in teachers:
            for row in bench_embedding(name, device, args.proposals, args.repeats):
                print(f"| {row['setting']} | {row['way']} | {row['rate']:.1f} | "
                      f"{row['ratio']:.1f}x | {row['agreement']} |", flush=True)

    if args.part in ('all', 'train'):
        with tempfile.TemporaryDirectory() as tmp:
            root = shapes_data_root(args.data_root, args.train_images, tmp)
            rows, info = bench_training(device, args.steps, args.train_images, args.proposals,
                                        root)
        print(f"\n(b) training step (batch {info['batch']}, median of {args.steps} steps; "
              f"region cache of {info['cache_images']} images built in "
              f"{info['cache_time']:.1f} s = {info['cache_images'] / info['cache_time']:.1f} "
              'images/s, RPN + crops)\n')
        print('| model | median step (ms) | min - max (ms) | median / plain median | '
              'min / plain min |')
        print('|---|---:|---:|---:|---:|')
        plain, plain_min = rows[0]['step'], rows[0]['spread'][0]
        for row in rows:
            low, high = row['spread']
            print(f"| {row['name']} | {1000 * row['step']:.0f} | {1000 * low:.0f} - "
                  f"{1000 * high:.0f} | {row['step'] / plain:.2f}x | {low / plain_min:.2f}x |")
    load_after = os.getloadavg()
    print(f'\nload average {load_after[0]:.1f} at the end; '
          f'{time.perf_counter() - started:.0f} s in all')


if __name__ == '__main__':
    main()
