"""Build the region-embedding cache: proposals from a detector, embeddings from a teacher.

As in ViLD, the proposals come from a detector trained on base classes only (its RPN is
class-agnostic, so it also proposes novel objects), and each proposal is embedded by the
teacher's image tower from a crop of the original image (ViLD: 1x and 1.5x crops, embeddings
summed and renormalised). The result is written once by :func:`build_region_cache` and reused
by every later run; :class:`BuildRegionCacheHook` does it at the start of training if needed.
"""
import logging
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

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
def propose(model, pipeline: Compose, img_path: str, img_id: int,
            num_proposals: int) -> np.ndarray:
    """Top ``num_proposals`` RPN boxes (K, 4) of one image, xyxy in original pixels."""
    data = pipeline(dict(img_path=img_path, img_id=img_id))
    data = model.data_preprocessor(dict(inputs=[data['inputs']],
                                        data_samples=[data['data_samples']]), False)
    feats = model.extract_feat(data['inputs'])
    results = model.rpn_head.predict(feats, data['data_samples'], rescale=True)[0]
    order = results.scores.argsort(descending=True)[:num_proposals]
    return results.bboxes[order].cpu().numpy()


def build_region_cache(cache_dir, data_list: Sequence[dict], proposal_detector: dict,
                       teacher, num_proposals: int = 32, scales: Sequence[float] = (1.0, 1.5),
                       device='cpu') -> RegionEmbeddingCache:
    """Propose and embed regions for every image in ``data_list`` and write the cache.

    Args:
        data_list: dataset entries with ``img_path`` and ``img_id`` (mmdet ``data_list``).
        proposal_detector: ``dict(checkpoint=..., config=None)`` of a base-class detector.
        teacher: a teacher config dict or a built teacher.
        scales: crop scales about each box centre; embeddings are summed and renormalised.
    """
    teacher = build_teacher(teacher).to(device)
    model, cfg = load_proposal_detector(device=device, **proposal_detector)
    pipeline = inference_pipeline(cfg)

    def records() -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        for info in tqdm(data_list, desc='embedding proposals', unit='img'):
            boxes = propose(model, pipeline, info['img_path'], info['img_id'], num_proposals)
            image = mmcv.imread(info['img_path'], channel_order='rgb')
            image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
            embeddings = teacher.encode_regions(image.float().to(device),
                                                [torch.from_numpy(boxes).to(device)],
                                                scales=tuple(scales))[0]
            yield info['img_id'], boxes, embeddings.cpu().numpy()

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
