"""Build the region-embedding cache: proposals from a detector, embeddings from a teacher.

As in ViLD, the proposals come from a detector trained on base classes only (its RPN is
class-agnostic, so it also proposes novel objects), and each proposal is embedded by the
teacher's image tower from a crop of the original image (ViLD: 1x and 1.5x crops, embeddings
summed and renormalised). The result is written once by :func:`build_region_cache` and reused
by every later run; :class:`BuildRegionCacheHook` does it at the start of training if needed.
"""
import logging
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import load_checkpoint
from tqdm import tqdm

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import HOOKS, MODELS
from vlkd.teachers import build_teacher
from .inference import inference_pipeline
from .region_cache import RegionEmbeddingCache, RegionCacheMismatch, write_region_cache


def load_proposal_detector(checkpoint: str, config: Optional[str] = None, device='cpu'):
    """Build an mmdet two-stage detector and load its weights.

    ``checkpoint`` is a file or the work_dir of the detector's training run. The model is
    built from ``config`` if given, else from the training config mmengine stored in the
    checkpoint, so a checkpoint alone is enough.
    """
    try:
        path = resolve_checkpoint(checkpoint)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f'No proposal detector checkpoint: {err} Train the base-class detector first '
            '(e.g. python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py) or set '
            'proposal_detector.checkpoint.') from err
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


def build_region_cache(cache_dir, data_list: Sequence[dict], proposal_detector: dict,
                       teacher, num_proposals: int = 32, scales: Sequence[float] = (1.0, 1.5),
                       device='cpu', batch_size: int = 16) -> RegionEmbeddingCache:
    """Propose and embed regions for every image in ``data_list`` and write the cache.

    Args:
        data_list: dataset entries with ``img_path`` and ``img_id`` (mmdet ``data_list``).
        proposal_detector: ``dict(checkpoint=..., config=None)`` of a base-class detector.
        teacher: a teacher config dict or a built teacher.
        scales: crop scales about each box centre; embeddings are summed and renormalised.
        batch_size: images per forward pass of the detector (their crops go through the
            teacher together, ``teacher.region_batch_size`` at a time).
    """
    teacher = build_teacher(teacher).to(device)
    model, cfg = load_proposal_detector(device=device, **proposal_detector)
    pipeline = inference_pipeline(cfg)

    def records() -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        with tqdm(total=len(data_list), desc='embedding proposals', unit='img') as progress:
            for start in range(0, len(data_list), batch_size):
                infos = data_list[start:start + batch_size]
                boxes = propose(model, pipeline, infos, num_proposals)
                images = [mmcv.imread(info['img_path'], channel_order='rgb') for info in infos]
                # images of one size go through the teacher together, others one by one
                groups = [list(range(len(images)))]
                if len({image.shape for image in images}) > 1:
                    groups = [[i] for i in range(len(images))]
                for group in groups:
                    pixels = torch.from_numpy(np.stack([images[i] for i in group]))
                    embeddings = teacher.encode_regions(
                        pixels.permute(0, 3, 1, 2).float().to(device),
                        [torch.from_numpy(boxes[i]).to(device) for i in group],
                        scales=tuple(scales))
                    for i, image_embeddings in zip(group, embeddings):
                        yield infos[i]['img_id'], boxes[i], image_embeddings.cpu().numpy()
                progress.update(len(infos))

    return write_region_cache(
        cache_dir, records(), teacher_fingerprint=teacher.fingerprint,
        proposal_source=str(resolve_checkpoint(proposal_detector['checkpoint']).resolve()),
        extra_meta=dict(num_proposals=num_proposals, scales=list(scales)))


@HOOKS.register_module()
class BuildRegionCacheHook(Hook):
    """Before training, make sure the region-embedding cache exists and matches the teacher.

    Rank 0 builds a missing cache (with a progress bar) while the other ranks wait; a cache
    made with another teacher is an error unless ``rebuild_on_mismatch=True``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, cache_dir: str, proposal_detector: dict, teacher: dict,
                 num_proposals: int = 32, scales: Sequence[float] = (1.0, 1.5),
                 rebuild_on_mismatch: bool = False):
        self.cache_dir = cache_dir
        self.proposal_detector = proposal_detector
        self.teacher = teacher
        self.num_proposals = num_proposals
        self.scales = tuple(scales)
        self.rebuild_on_mismatch = rebuild_on_mismatch

    def _needs_build(self, fingerprint: str) -> bool:
        if not (Path(self.cache_dir) / 'meta.json').is_file():
            return True
        try:
            RegionEmbeddingCache(self.cache_dir).check(teacher_fingerprint=fingerprint)
        except RegionCacheMismatch:
            if not self.rebuild_on_mismatch:
                raise
            print_log(f'Region cache {self.cache_dir} was made with another teacher: '
                      'rebuilding it.', logger='current', level=logging.WARNING)
            return True
        return False

    def before_train(self, runner) -> None:
        if is_main_process():
            teacher = build_teacher(self.teacher)
            if self._needs_build(teacher.fingerprint):
                dataset = runner.train_dataloader.dataset
                data_list = [dataset.get_data_info(i) for i in range(len(dataset))]
                print_log(f'Building the region-embedding cache {self.cache_dir} for '
                          f'{len(data_list)} images.', logger='current')
                build_region_cache(self.cache_dir, data_list, self.proposal_detector,
                                   teacher, self.num_proposals, self.scales)
        barrier()
