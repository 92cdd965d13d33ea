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
import copy
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from vlkd.datasets.shapes import generate_shapes
from vlkd.det.proposal_embedding import BuildRegionCacheHook, train_data_list
from vlkd.registry import MODELS
from vlkd.teachers import OpenCLIPTeacher
from vlkd.vlp.clip_model import build_open_clip_model

ROOT = Path(__file__).resolve().parents[1]
# the image tower and text tower of configs/pretrain/clip_shapes_tiny.py
SHAPES_TEACHER = dict(
    embed_dim=128,
    vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=32, head_width=32),
    text_cfg=dict(context_length=32, vocab_size=49408, width=128, heads=4, layers=4))
TEACHERS = dict(shapes=dict(model_cfg=SHAPES_TEACHER, image_size=128, images=16, naive_images=4),
                **{'vit-b-32': dict(model_name='ViT-B-32', image_size=448, images=4,
                                    naive_images=1)})
SCALES = (1.0, 1.5)
STUDENTS = [  # (name in the table, config); the first one is the baseline
    ('plain Faster R-CNN (base-only)', 'base_only_faster_rcnn_r18_fpn_shapes.py'),
    ('ViLD-text', 'vild_text_r18_fpn_shapes.py'),
    ('ViLD (text + cached image distillation)', 'vild_r18_fpn_shapes.py'),
    ('ViLD-image (cached distillation only)', 'vild_image_r18_fpn_shapes.py'),
    ('ViLD-ensemble (two heads)', 'vild_ensemble_r18_fpn_shapes.py'),
]


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


# -- (a) proposal embedding ------------------------------------------------------------------
def random_boxes(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` boxes (x1, y1, x2, y2) with sides 8-50% of the image, inside it."""
    sides = (0.08 + 0.42 * torch.rand(count, 2, generator=generator)) * size
    corners = torch.rand(count, 2, generator=generator) * (size - sides)
    return torch.cat([corners, corners + sides], dim=1)


@torch.no_grad()
def naive_embeddings(teacher, images: torch.Tensor, boxes) -> torch.Tensor:
    """One crop at a time: slice each scaled box (clipped to the image), encode it alone."""
    out = []
    for image, image_boxes in zip(images, boxes):
        height, width = image.shape[-2:]
        for box in image_boxes.tolist():
            summed = 0
            for scale in SCALES:
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                half_w, half_h = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
                x1, x2 = max(0, int(cx - half_w)), min(width, int(np.ceil(cx + half_w)))
                y1, y2 = max(0, int(cy - half_h)), min(height, int(np.ceil(cy + half_h)))
                summed = summed + teacher.encode_image(image[None, :, y1:y2, x1:x2])[0]
            out.append(F.normalize(summed, dim=-1))
    return torch.stack(out)


def bench_embedding(name: str, device: torch.device, proposals: int, repeats: int) -> list:
    spec = TEACHERS[name]
    torch.manual_seed(0)
    model = build_open_clip_model(spec.get('model_name'), spec.get('model_cfg'))
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / 'teacher.pt'
        torch.save(model.state_dict(), weights)
        teacher = OpenCLIPTeacher(model_name=spec.get('model_name'),
                                  model_cfg=spec.get('model_cfg'),
                                  pretrained=str(weights)).to(device)
    g = torch.Generator().manual_seed(0)
    size = spec['image_size']
    images = (torch.rand(spec['images'], 3, size, size, generator=g) * 255).to(device)
    boxes = [random_boxes(proposals, size, g).to(device) for _ in range(spec['images'])]
    few = spec['naive_images']

    def crops(n=len(images)):
        return torch.cat(teacher.encode_regions(images[:n], boxes[:n], scales=SCALES))

    def dense(n=len(images)):
        return torch.cat(teacher.encode_regions_dense(images[:n], boxes[:n], scales=SCALES))

    def naive():
        return naive_embeddings(teacher, images[:few], boxes[:few])

    crops(), dense()  # warm-up
    # the three ways take turns in each round, so a shared machine's load falls on all alike
    rounds = [[timed(way, device) for way in (naive, crops, dense)] for _ in range(repeats)]
    naive_time, crop_time, dense_time = (min(column) for column in zip(*rounds))
    crop_embeddings = crops(few)
    agreement_naive = (naive() * crop_embeddings).sum(-1).mean().item()
    agreement_dense = (dense(few) * crop_embeddings).sum(-1).mean().item()
    setting = (f'{name}: {teacher.image_size} px tower, {size} px images, {proposals} '
               'boxes/image, 1x+1.5x')
    naive_rate = few * proposals / naive_time
    rows = [dict(setting=setting, way=f'naive loop ({few} images)', rate=naive_rate,
                 ratio=1.0, agreement='-')]
    for way, seconds, agreement in [('crops (encode_regions)', crop_time,
                                     f'{agreement_naive:.3f} vs naive'),
                                    ('dense (encode_regions_dense)', dense_time,
                                     f'{agreement_dense:.3f} vs crops')]:
        rate = len(images) * proposals / seconds
        rows.append(dict(setting=setting, way=f'{way} ({len(images)} images)', rate=rate,
                         ratio=rate / naive_rate, agreement=agreement))
    return rows


# -- (b) training steps ----------------------------------------------------------------------
def student_config(config: str, data_root: str, teacher: dict, cache_dir: str,
                   num_images: int) -> Config:
    cfg = Config.fromfile(ROOT / 'configs' / 'vild' / config)
    object.__setattr__(cfg, '_format_python_code', False)
    head = cfg.model.roi_head.bbox_head
    if 'vocabulary' in head:
        head.vocabulary = dict(teacher=teacher, templates='shapes')
    if cfg.model.roi_head.get('region_distillation'):
        cfg.model.roi_head.region_distillation.cache_dir = cache_dir
    loader = cfg.train_dataloader
    loader.update(num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    loader.dataset.update(data_root=data_root, indices=num_images)
    return cfg


def bench_training(device: torch.device, steps: int, num_images: int, proposals: int,
                   data_root: str) -> tuple:
    init_default_scope('vlkd')
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / 'teacher.pt'
        torch.save(build_open_clip_model(model_cfg=SHAPES_TEACHER).state_dict(), weights)
        teacher = dict(type='OpenCLIPTeacher', model_cfg=SHAPES_TEACHER,
                       pretrained=str(weights), templates='shapes')
        cache_dir = str(Path(tmp) / 'region_cache')
        configs = [(name, student_config(config, data_root, teacher, cache_dir, num_images))
                   for name, config in STUDENTS]

        # the proposal detector: the ViLD-text model (random weights), saved as training does
        text_cfg = configs[1][1]
        torch.manual_seed(0)
        detector = MODELS.build(text_cfg.model)
        detector.init_weights()
        checkpoint = Path(tmp) / 'vild_text.pth'
        torch.save(dict(state_dict=detector.state_dict(), meta=dict(cfg=text_cfg.pretty_text)),
                   checkpoint)
        hook = BuildRegionCacheHook(cache_dir, dict(checkpoint=str(checkpoint)), teacher,
                                    num_proposals=proposals, scales=SCALES)
        data_list = train_data_list(text_cfg)
        cache_time = timed(lambda: hook.build(data_list, device=device), device)

        models, batches = [], []
        for name, cfg in configs:
            torch.manual_seed(0)
            model = MODELS.build(cfg.model).to(device)
            model.init_weights()
            model.train()
            optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
            loader = Runner.build_dataloader(cfg.train_dataloader)
            models.append((name, model, optim_wrapper))
            batches.append(list(loader))
        times = {name: [] for name, _, _ in models}
        for step in range(steps + 2):  # two warm-up rounds
            for (name, model, optim_wrapper), model_batches in zip(models, batches):
                batch = model_batches[step % len(model_batches)]
                seconds = timed(lambda: model.train_step(copy.copy(batch), optim_wrapper),
                                device)
                if step >= 2:
                    times[name].append(seconds)
    rows = [dict(name=name, step=statistics.median(values), spread=(min(values), max(values)))
            for name, values in times.items()]
    return rows, dict(cache_time=cache_time, cache_images=len(data_list),
                      batch=configs[0][1].train_dataloader.batch_size)


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
    hardware = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                else f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU '
                     f'cores, {torch.get_num_threads()} torch threads')
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f'device: {device} ({hardware}); torch {torch.__version__}; load average '
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
        root = Path(args.data_root) if args.data_root else ROOT / 'data' / 'shapes'
        with tempfile.TemporaryDirectory() as tmp:
            base_boxes = root / 'annotations' / 'instances_train_base.json'
            if args.data_root and not base_boxes.is_file():
                raise SystemExit(f'--data-root: {base_boxes} does not exist; give a '
                                 'vlkd-shapes root (python tools/make_shapes.py --out DIR).')
            if not base_boxes.is_file():
                root = generate_shapes(Path(tmp) / 'shapes', seed=0, num_train=args.train_images,
                                       num_val=2, num_test=2)
            rows, info = bench_training(device, args.steps, args.train_images, args.proposals,
                                        str(root) + '/')
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
