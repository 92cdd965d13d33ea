"""Region-embedding cache: round trip, atomic writes, teacher checks, box mapping."""
import json

import numpy as np
import pytest
import torch

from vlkd.det.region_cache import (RegionCacheMismatch, RegionEmbeddingCache,
                                   map_boxes_to_input, write_region_cache)


def _records(rng):
    for img_id, count in [(3, 4), (7, 0), (11, 2)]:
        boxes = rng.uniform(0, 100, (count, 4)).astype(np.float32)
        emb = rng.normal(size=(count, 8)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12
        yield img_id, boxes, emb


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    expected = list(_records(np.random.default_rng(0)))
    cache = write_region_cache(tmp_path / 'cache', _records(rng), 'teacher-a', 'rpn.pth')
    assert len(cache) == 3 and 7 in cache and 5 not in cache
    for img_id, boxes, emb in expected:
        got_boxes, got_emb = cache.get(img_id)
        np.testing.assert_array_equal(got_boxes.numpy(), boxes)
        # embeddings are stored as float16: relative error below 1e-3
        np.testing.assert_allclose(got_emb.numpy(), emb, atol=2e-3)
    meta = json.loads((tmp_path / 'cache' / 'meta.json').read_text())
    assert meta['num_regions'] == 6 and meta['embed_dim'] == 8
    with pytest.raises(KeyError, match='not in the region cache'):
        cache.get(5)


def test_teacher_mismatch_is_refused(tmp_path):
    cache = write_region_cache(tmp_path / 'c', _records(np.random.default_rng(0)), 'teacher-a',
                               'rpn.pth')
    cache.check(teacher_fingerprint='teacher-a')
    with pytest.raises(RegionCacheMismatch, match='another teacher|teacher'):
        cache.check(teacher_fingerprint='teacher-b')


def test_interrupted_build_leaves_no_cache(tmp_path):
    def broken():
        yield 1, np.zeros((2, 4)), np.zeros((2, 8))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_region_cache(tmp_path / 'c', broken(), 't', 'p')
    assert not (tmp_path / 'c').exists()
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone too
    with pytest.raises(FileNotFoundError, match='meta.json'):
        RegionEmbeddingCache(tmp_path / 'c')


def test_map_boxes_resize_and_flip():
    boxes = torch.tensor([[10., 20., 50., 40.]])
    # resize x2 then horizontal flip of a 200 px wide image (mmdet's homography convention)
    resize = np.diag([2.0, 2.0, 1.0])
    flip = np.array([[-1.0, 0, 200], [0, 1, 0], [0, 0, 1]])
    meta = dict(homography_matrix=flip @ resize, img_shape=(100, 200))
    mapped = map_boxes_to_input(boxes, meta)
    # by hand: x in [20, 100] -> flipped [100, 180]; y in [40, 80], clipped at height 100
    torch.testing.assert_close(mapped, torch.tensor([[100., 40., 180., 80.]]))
    with pytest.raises(KeyError, match='homography_matrix'):
        map_boxes_to_input(boxes, dict(img_shape=(100, 200)))
