"""Building the region cache: proposals and teacher embeddings (crops and dense), resuming an
interrupted build, and the training hook's refuse / rebuild decision on a mismatched cache."""
import hashlib
import json
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch

import vlkd.det.proposal_embedding as proposal_embedding
from vlkd.det import BuildRegionCacheHook, build_region_cache
from vlkd.det.inference import inference_pipeline
from vlkd.det.proposal_embedding import load_proposal_detector, propose
from vlkd.det.region_cache import RegionCacheMismatch, RegionEmbeddingCache
from vlkd.teachers import OpenCLIPTeacher, build_teacher


def _data_list(shapes_root, split='train', limit=None):
    coco = json.loads((shapes_root / 'annotations' / f'instances_{split}.json').read_text())
    images = coco['images'][:limit]
    return [dict(img_id=img['id'], img_path=str(shapes_root / 'images' / split /
                                                img['file_name'])) for img in images]


@pytest.mark.parametrize('region_source', ['crops', 'dense'])
def test_cache_holds_the_detector_proposals_and_their_teacher_embeddings(
        region_source, tmp_path, shapes_root, tiny_teacher_cfg, vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    data_list = _data_list(shapes_root)
    cache = build_region_cache(tmp_path / 'cache', data_list, dict(checkpoint=str(checkpoint)),
                               tiny_teacher_cfg, num_proposals=4, region_source=region_source,
                               batch_size=4, shard_size=4)
    teacher = build_teacher(tiny_teacher_cfg)
    model, cfg = load_proposal_detector(str(checkpoint))
    pipeline = inference_pipeline(cfg)
    encode = dict(crops=teacher.encode_regions, dense=teacher.encode_regions_dense)[region_source]
    assert len(cache) == len(data_list)
    for info in data_list:  # one image at a time, unlike the build (batches of 4)
        boxes, embeddings = cache.get(info['img_id'])
        expected_boxes = torch.from_numpy(propose(model, pipeline, [info], 4)[0])
        torch.testing.assert_close(boxes, expected_boxes, atol=1e-3, rtol=1e-4)
        image = torch.from_numpy(mmcv.imread(info['img_path'], channel_order='rgb'))
        expected = encode(image.permute(2, 0, 1)[None].float(), [boxes], scales=(1.0, 1.5))[0]
        torch.testing.assert_close(embeddings, expected, atol=2e-3, rtol=0)  # float16 storage
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert cache.key == dict(teacher_fingerprint=teacher.fingerprint,
                             proposal_source=f'sha256:{digest}', region_source=region_source,
                             scales=[1.0, 1.5], num_proposals=4)


def test_an_interrupted_build_resumes_where_it_stopped(tmp_path, monkeypatch, shapes_root,
                                                       tiny_teacher_cfg, vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    data_list = _data_list(shapes_root)
    detector = dict(checkpoint=str(checkpoint))
    real_embed, embedded = proposal_embedding.embed_regions, []

    def embed_then_crash(teacher, images, boxes, *args):
        if embedded:
            raise KeyboardInterrupt  # the second batch never finishes
        embedded.extend(images)
        return real_embed(teacher, images, boxes, *args)

    monkeypatch.setattr(proposal_embedding, 'embed_regions', embed_then_crash)
    with pytest.raises(KeyboardInterrupt):
        build_region_cache(tmp_path / 'cache', data_list, detector, tiny_teacher_cfg,
                           num_proposals=3, batch_size=2, shard_size=2)
    assert len(embedded) == 2
    with pytest.raises(FileNotFoundError, match='2 images embedded so far'):
        RegionEmbeddingCache(tmp_path / 'cache')

    def counting(teacher, images, boxes, *args):
        embedded.extend(images)
        return real_embed(teacher, images, boxes, *args)

    monkeypatch.setattr(proposal_embedding, 'embed_regions', counting)
    resumed = build_region_cache(tmp_path / 'cache', data_list, detector, tiny_teacher_cfg,
                                 num_proposals=3, batch_size=2, shard_size=2)
    assert len(embedded) == len(data_list)  # 2 before the crash + only the rest after it
    fresh = build_region_cache(tmp_path / 'fresh', data_list, detector, tiny_teacher_cfg,
                               num_proposals=3, batch_size=2, shard_size=2)
    for info in data_list:
        for got, expected in zip(resumed.get(info['img_id']), fresh.get(info['img_id'])):
            torch.testing.assert_close(got, expected)


def test_hook_refuses_or_rebuilds_a_cache_of_another_teacher(tmp_path, shapes_root,
                                                             tiny_teacher_cfg,
                                                             vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    data_list = _data_list(shapes_root, limit=2)
    cache_dir = str(tmp_path / 'cache')
    settings = dict(cache_dir=cache_dir, proposal_detector=dict(checkpoint=str(checkpoint)),
                    num_proposals=2)
    teacher = build_teacher(tiny_teacher_cfg)
    hook = BuildRegionCacheHook(teacher=tiny_teacher_cfg, **settings)
    assert hook.needs_build(teacher)
    hook.build(data_list)
    assert not hook.needs_build(teacher)

    torch.manual_seed(1)
    other = OpenCLIPTeacher(model_cfg=tiny_teacher_cfg['model_cfg'])
    refusing = BuildRegionCacheHook(teacher=other, **settings)
    with pytest.raises(RegionCacheMismatch, match='another teacher'):
        refusing.needs_build(other)
    with pytest.raises(RegionCacheMismatch, match='num_proposals: cache has 2, expected 3'):
        BuildRegionCacheHook(teacher=teacher, **dict(settings, num_proposals=3)).needs_build(
            teacher)

    rebuilding = BuildRegionCacheHook(teacher=other, rebuild_on_mismatch=True, **settings)
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=_Listed(data_list)),
                             model=torch.nn.Linear(1, 1))
    rebuilding.before_train(runner)
    rebuilt = RegionEmbeddingCache(cache_dir)
    assert rebuilt.teacher_fingerprint == other.fingerprint != teacher.fingerprint
    assert len(rebuilt) == 2


class _Listed:
    """The part of an mmengine dataset the hook uses."""

    def __init__(self, infos):
        self.infos = infos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]
