"""Build the region-embedding cache: proposals from a detector, embeddings from a teacher.

As in ViLD, the proposals come from a detector trained on base classes only (its RPN is
class-agnostic, so it also proposes novel objects). Each proposal is embedded by the
teacher's image tower in one of two ways (``region_source``):

- ``'crops'``: a crop of the original image per box and scale, each encoded as an image
  (ViLD: 1x and 1.5x crops, embeddings summed and renormalised);
  :meth:`Teacher.encode_regions`.
- ``'dense'``: the image is encoded once into the teacher's dense feature map and each box
  is RoIAlign-pooled from it (:meth:`Teacher.encode_regions_dense`); one forward pass per
  image instead of one per crop, at the price of embeddings that only approximate those of
  the crops.

The result is written once by :func:`build_region_cache` (resumable, with a progress bar)
and reused by every later run whose cache key agrees (:mod:`.region_cache`);
:class:`BuildRegionCacheHook` does it at the start of training if needed and
``tools/embed_proposals.py CONFIG`` does it from the command line.
"""
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import DATASETS
from mmengine.runner import load_checkpoint
from torch import Tensor
from tqdm import tqdm

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import HOOKS, MODELS
from vlkd.teachers import Teacher, build_teacher
from vlkd.zoo.fetch import sha256_file
from .inference import inference_pipeline
from .region_cache import (RegionCacheMismatch, RegionCacheWriter, RegionEmbeddingCache,
                           cache_key)


def load_proposal_detector(checkpoint: str, config: Optional[str] = None, device='cpu'):
    """Build an mmdet two-stage detector and load its weights.

    ``checkpoint`` is a file or the work_dir of the detector's training run. The model is
    built from ``config`` if given, else from the training config mmengine stored in the
    checkpoint, so a checkpoint alone is enough.
    """
    path = proposal_checkpoint(checkpoint)
    if config is not None:
        cfg = Config.fromfile(config)
    else:
        meta = torch.load(path, map_location='cpu', weights_only=True).get('meta', {})
        if not isinstance(meta.get('cfg'), str):
            raise ValueError(f'{path} stores no training config; pass proposal_detector.config.')
        cfg = Config.fromstring(meta['cfg'], file_format='.py')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(path), map_location='cpu', logger='silent')
    return model.to(device).eval(), cfg


def proposal_checkpoint(checkpoint: str) -> Path:
    """The proposal detector's checkpoint file, with an error that says how to make it."""
    try:
        return resolve_checkpoint(checkpoint)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'No proposal detector checkpoint: {err} Train the base-class detector first '
            '(e.g. python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py) or set '
            'proposal_detector.checkpoint.') from err


def proposal_source(proposal_detector: dict) -> str:
    """Identity of the proposals for the cache key: the sha256 of the detector's weights
    file (the same file under another path is the same source)."""
    return 'sha256:' + sha256_file(proposal_checkpoint(proposal_detector['checkpoint']))


@torch.no_grad()
def propose(model, pipeline: Compose, infos: Sequence[dict],
            num_proposals: int) -> List[np.ndarray]:
    """Top ``num_proposals`` RPN boxes (K, 4) of each image in ``infos`` (dicts with
    ``img_path`` and ``img_id``), xyxy in original pixels; one batched forward pass."""
    items = [pipeline(dict(img_path=info['img_path'], img_id=info['img_id']))
             for info in infos]
    data = model.data_preprocessor(dict(inputs=[item['inputs'] for item in items],
                                        data_samples=[item['data_samples'] for item in items]),
                                   False)
    feats = model.extract_feat(data['inputs'])
    boxes = []
    for result in model.rpn_head.predict(feats, data['data_samples'], rescale=True):
        order = result.scores.argsort(descending=True)[:num_proposals]
        boxes.append(result.bboxes[order].cpu().numpy())
    return boxes


def _crop_embeddings(teacher: Teacher, images: Tensor, boxes: List[Tensor],
                     scales: Sequence[float]) -> List[Tensor]:
    return teacher.encode_regions(images, boxes, scales=tuple(scales))


def _dense_embeddings(teacher: Teacher, images: Tensor, boxes: List[Tensor],
                      scales: Sequence[float]) -> List[Tensor]:
    return teacher.encode_regions_dense(images, boxes, scales=tuple(scales))


# How each region source turns images (B, 3, H, W) and boxes into embeddings (Ni, D).
REGION_SOURCES = dict(crops=_crop_embeddings, dense=_dense_embeddings)


def check_region_source(region_source: str) -> str:
    if region_source not in REGION_SOURCES:
        raise ValueError(f'region_source must be one of {sorted(REGION_SOURCES)}, got '
                         f'{region_source!r}.')
    return region_source


def embed_regions(teacher: Teacher, images: List[np.ndarray], boxes: List[np.ndarray],
                  region_source: str = 'crops',
                  scales: Sequence[float] = (1.0, 1.5)) -> List[np.ndarray]:
    """Teacher embeddings (Ki, D) of the boxes (Ki, 4) of RGB uint8 images (H, W, 3).

    Images of one size go through the teacher together, others one by one.
    """
    embed = REGION_SOURCES[check_region_source(region_source)]
    groups = [list(range(len(images)))]
    if len({image.shape for image in images}) > 1:
        groups = [[i] for i in range(len(images))]
    out: List[Optional[np.ndarray]] = [None] * len(images)
    for group in groups:
        pixels = torch.from_numpy(np.stack([images[i] for i in group]))
        embeddings = embed(teacher, pixels.permute(0, 3, 1, 2).float().to(teacher.device),
                           [torch.from_numpy(boxes[i]).to(teacher.device) for i in group],
                           scales)
        for i, image_embeddings in zip(group, embeddings):
            out[i] = image_embeddings.float().cpu().numpy()
    return out


def build_region_cache(cache_dir, data_list: Sequence[dict], proposal_detector: dict,
                       teacher, num_proposals: int = 32, scales: Sequence[float] = (1.0, 1.5),
                       device='cpu', batch_size: int = 16, region_source: str = 'crops',
                       shard_size: int = 256, resume: bool = True) -> RegionEmbeddingCache:
    """Propose and embed regions for every image in ``data_list`` and write the cache.

    An unfinished build of the same cache (same key and images) is continued: only the
    images it lacks are proposed and embedded.

    Args:
        data_list: dataset entries with ``img_path`` and ``img_id`` (mmdet ``data_list``).
        proposal_detector: ``dict(checkpoint=..., config=None)`` of a base-class detector.
        teacher: a teacher config dict or a built teacher.
        scales: box scales about each centre; embeddings are summed and renormalised.
        batch_size: images per forward pass of the detector (their regions go through the
            teacher together, ``teacher.region_batch_size`` at a time).
        region_source: ``'crops'`` or ``'dense'`` (see the module doc).
        shard_size: images per shard of the cache (the unit of resumption).
        resume: ``False`` discards an unfinished build and starts again.
    """
    check_region_source(region_source)
    teacher = build_teacher(teacher).to(device)
    key = cache_key(teacher.fingerprint, proposal_source(proposal_detector), region_source,
                    scales, num_proposals)
    writer = RegionCacheWriter(cache_dir, key, [info['img_id'] for info in data_list],
                               shard_size=shard_size, resume=resume)
    todo = [info for info in data_list if int(info['img_id']) not in writer.done]
    if writer.done:
        print_log(f'Resuming the region cache {cache_dir}: {len(writer.done)} of '
                  f'{len(data_list)} images are already embedded.', logger='current')
    if todo:
        model, cfg = load_proposal_detector(device=device, **proposal_detector)
        pipeline = inference_pipeline(cfg)
        with tqdm(total=len(data_list), initial=len(writer.done), desc='embedding proposals',
                  unit='img') as progress:
            for start in range(0, len(todo), batch_size):
                infos = todo[start:start + batch_size]
                boxes = propose(model, pipeline, infos, num_proposals)
                images = [mmcv.imread(info['img_path'], channel_order='rgb') for info in infos]
                embeddings = embed_regions(teacher, images, boxes, region_source, scales)
                for info, image_boxes, image_embeddings in zip(infos, boxes, embeddings):
                    writer.add(info['img_id'], image_boxes, image_embeddings)
                progress.update(len(infos))
    return writer.finish(dict(proposal_checkpoint=str(
        proposal_checkpoint(proposal_detector['checkpoint']).resolve())))


@HOOKS.register_module()
class BuildRegionCacheHook(Hook):
    """Before training, make sure the region-embedding cache exists and matches the config.

    Rank 0 builds a missing cache, or finishes an interrupted build (with a progress bar),
    while the other ranks wait. A finished cache is checked against the cache key of the
    config (teacher fingerprint, proposal detector weights, region source, scales, proposals
    per image): a mismatch is an error unless ``rebuild_on_mismatch=True``, which rebuilds it.

    Args:
        cache_dir: where the cache lives.
        proposal_detector: ``dict(checkpoint=..., config=None)``.
        teacher: the teacher config that embeds the regions.
        num_proposals, scales, region_source, batch_size, shard_size: see
            :func:`build_region_cache`.
        rebuild_on_mismatch: rebuild a cache made differently instead of refusing it.
    """

    priority = 'VERY_HIGH'

    def __init__(self, cache_dir: str, proposal_detector: dict, teacher: dict,
                 num_proposals: int = 32, scales: Sequence[float] = (1.0, 1.5),
                 rebuild_on_mismatch: bool = False, region_source: str = 'crops',
                 batch_size: int = 16, shard_size: int = 256):
        self.cache_dir = cache_dir
        self.proposal_detector = proposal_detector
        self.teacher = teacher
        self.num_proposals = num_proposals
        self.scales = tuple(scales)
        self.rebuild_on_mismatch = rebuild_on_mismatch
        self.region_source = check_region_source(region_source)
        self.batch_size = batch_size
        self.shard_size = shard_size

    def expected_key(self, teacher: Teacher) -> Dict:
        return cache_key(teacher.fingerprint, proposal_source(self.proposal_detector),
                         self.region_source, self.scales, self.num_proposals)

    def needs_build(self, teacher: Teacher) -> bool:
        """True if the cache is missing or unfinished, or made differently and
        ``rebuild_on_mismatch``; raises :class:`RegionCacheMismatch` otherwise."""
        if not (Path(self.cache_dir) / 'meta.json').is_file():
            return True
        try:
            RegionEmbeddingCache(self.cache_dir).check(**self.expected_key(teacher))
        except RegionCacheMismatch as err:
            if not self.rebuild_on_mismatch:
                raise
            print_log(f'{err} Rebuilding it (rebuild_on_mismatch=True).', logger='current',
                      level=logging.WARNING)
            return True
        return False

    def build(self, data_list: Sequence[dict], teacher=None,
              device='cpu') -> RegionEmbeddingCache:
        """Build (or finish) the cache for ``data_list`` (entries with ``img_path``,
        ``img_id``); ``teacher``: a built teacher to reuse, else the config's."""
        return build_region_cache(self.cache_dir, data_list, self.proposal_detector,
                                  self.teacher if teacher is None else teacher,
                                  self.num_proposals, self.scales, device=device,
                                  batch_size=self.batch_size, region_source=self.region_source,
                                  shard_size=self.shard_size)

    def before_train(self, runner) -> None:
        if is_main_process():
            teacher = build_teacher(self.teacher)
            if self.needs_build(teacher):
                dataset = runner.train_dataloader.dataset
                data_list = [dataset.get_data_info(i) for i in range(len(dataset))]
                print_log(f'Building the region-embedding cache {self.cache_dir} for '
                          f'{len(data_list)} images ({self.region_source}).', logger='current')
                device = next(runner.model.parameters()).device
                self.build(data_list, teacher, device=device)
        barrier()


def region_cache_hook(cfg: Config) -> BuildRegionCacheHook:
    """The :class:`BuildRegionCacheHook` of a training config (its ``custom_hooks``)."""
    hooks = [hook for hook in cfg.get('custom_hooks', [])
             if str(hook.get('type')).split('.')[-1] == 'BuildRegionCacheHook']
    if not hooks:
        raise ValueError(f'{cfg.filename} has no BuildRegionCacheHook in custom_hooks: its '
                         'method distils no cached region embeddings.')
    if len(hooks) > 1:
        raise ValueError(f'{cfg.filename} has {len(hooks)} BuildRegionCacheHooks; expected one.')
    return HOOKS.build({**hooks[0], 'type': 'BuildRegionCacheHook', '_scope_': 'vlkd'})


def train_data_list(cfg: Config) -> List[dict]:
    """The entries (``img_path``, ``img_id``, ...) of the config's training dataset, after
    its filters: the images the training hook would embed."""
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def build_region_cache_of_config(cfg: Config, rebuild: bool = False, device='cpu',
                                 batch_size: Optional[int] = None) -> RegionEmbeddingCache:
    """Build, finish or check the region cache that the config's training would use.

    A finished cache that matches the config is returned as it is; one made differently is
    an error unless ``rebuild`` (or the hook's ``rebuild_on_mismatch``).
    """
    hook = region_cache_hook(cfg)
    if rebuild:
        hook.rebuild_on_mismatch = True
    if batch_size is not None:
        hook.batch_size = batch_size
    teacher = build_teacher(hook.teacher)
    if not hook.needs_build(teacher):
        print_log(f'The region cache {hook.cache_dir} is complete and matches the config.',
                  logger='current')
        return RegionEmbeddingCache(hook.cache_dir)
    return hook.build(train_data_list(cfg), teacher, device=device)
