"""Speed of open-vocabulary detection distillation: proposal embedding (naive loop, batched
crops, dense RoIAlign) and training steps of the ViLD students against the plain mmdet
detector. ``tools/benchmark_det.py`` prints the full tables; ``tools/benchmark.py`` takes
rows of them into the suite's table. The module docstring of ``tools/benchmark_det.py``
describes what each measurement is.
"""
import copy
import statistics
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from vlkd.datasets.shapes import generate_shapes
from vlkd.det.proposal_embedding import BuildRegionCacheHook, train_data_list
from vlkd.registry import MODELS
from vlkd.teachers import OpenCLIPTeacher
from vlkd.vlp.clip_model import build_open_clip_model
from .measure import peak_memory, timed

ROOT = Path(__file__).resolve().parents[2]
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


def bench_embedding(name: str, device: torch.device, proposals: int, repeats: int,
                    spec: Optional[dict] = None) -> list:
    """Rows (naive loop, crops, dense) of ``setting``, ``way``, ``rate`` (regions/s),
    ``ratio`` (rate / the naive loop's), ``agreement`` (mean cosine, text), ``cosine``
    (float, None for the naive loop), ``seconds`` (fastest round) and ``memory`` (peak bytes
    of one call). ``spec`` replaces ``TEACHERS[name]`` (smaller runs)."""
    spec = spec or TEACHERS[name]
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
                 ratio=1.0, agreement='-', cosine=None, seconds=naive_time, images=few,
                 memory=peak_memory(naive, device))]
    for way, fn, seconds, cosine, peer in [
            ('crops (encode_regions)', crops, crop_time, agreement_naive, 'naive'),
            ('dense (encode_regions_dense)', dense, dense_time, agreement_dense, 'crops')]:
        rate = len(images) * proposals / seconds
        rows.append(dict(setting=setting, way=f'{way} ({len(images)} images)', rate=rate,
                         ratio=rate / naive_rate, agreement=f'{cosine:.3f} vs {peer}',
                         cosine=cosine, seconds=seconds, images=len(images),
                         memory=peak_memory(fn, device)))
    return rows


# -- (b) training steps ----------------------------------------------------------------------
def student_config(config: str, data_root: str, teacher: dict, cache_dir: str,
                   num_images: int, batch_size: Optional[int] = None) -> Config:
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
    if batch_size is not None:
        loader.batch_size = batch_size
    loader.dataset.update(data_root=data_root, indices=num_images)
    return cfg


def bench_training(device: torch.device, steps: int, num_images: int, proposals: int,
                   data_root: str, students=STUDENTS, batch_size: Optional[int] = None) -> tuple:
    """Rows (``name``, ``step``: median s, ``spread``: (min, max) s, ``memory``: peak bytes of
    one step) of the ``students`` ((name, config) pairs, the first the baseline), and the
    region cache's build time."""
    init_default_scope('vlkd')
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        weights = Path(tmp) / 'teacher.pt'
        torch.save(build_open_clip_model(model_cfg=SHAPES_TEACHER).state_dict(), weights)
        teacher = dict(type='OpenCLIPTeacher', model_cfg=SHAPES_TEACHER,
                       pretrained=str(weights), templates='shapes')
        cache_dir = str(Path(tmp) / 'region_cache')
        configs = [(name, student_config(config, data_root, teacher, cache_dir, num_images,
                                         batch_size))
                   for name, config in students]

        # the proposal detector: the ViLD-text model (random weights), saved as training does
        text_cfg = student_config('vild_text_r18_fpn_shapes.py', data_root, teacher, cache_dir,
                                  num_images, batch_size)
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
        memory = {name: peak_memory(
            lambda: model.train_step(copy.copy(model_batches[0]), optim_wrapper), device)
            for (name, model, optim_wrapper), model_batches in zip(models, batches)}
    rows = [dict(name=name, step=statistics.median(values), spread=(min(values), max(values)),
                 memory=memory[name])
            for name, values in times.items()]
    return rows, dict(cache_time=cache_time, cache_images=len(data_list),
                      batch=configs[0][1].train_dataloader.batch_size)


def shapes_data_root(data_root: Optional[str], num_images: int, tmp: str) -> str:
    """``data_root`` (checked), else data/shapes when it exists, else a vlkd-shapes set of
    ``num_images`` training images generated under ``tmp``; with a trailing '/'."""
    root = Path(data_root) if data_root else ROOT / 'data' / 'shapes'
    base_boxes = root / 'annotations' / 'instances_train_base.json'
    if data_root and not base_boxes.is_file():
        raise SystemExit(f'--data-root: {base_boxes} does not exist; give a '
                         'vlkd-shapes root (python tools/make_shapes.py --out DIR).')
    if not base_boxes.is_file():
        root = generate_shapes(Path(tmp) / 'shapes', seed=0, num_train=num_images, num_val=2,
                               num_test=2)
    return str(root) + '/'
