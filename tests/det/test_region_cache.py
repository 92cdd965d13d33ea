"""Region-embedding cache: round trip over shards, resumable builds, key checks, version-1
caches, box mapping."""
import json

import numpy as np
import pytest
import torch

from vlkd.det.region_cache import (RegionCacheMismatch, RegionCacheWriter,
                                   RegionEmbeddingCache, UnfinishedRegionCache, cache_key,
                                   map_boxes_to_input, write_region_cache)

IMAGES = [(3, 4), (7, 0), (11, 2), (12, 5), (20, 1)]  # (img_id, number of boxes)


def _records(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for img_id, count in IMAGES:
        boxes = rng.uniform(0, 100, (count, 4)).astype(np.float32)
        emb = rng.normal(size=(count, 8)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12
        out.append((img_id, boxes, emb))
    return out


def _assert_holds(cache, records):
    assert len(cache) == len(records)
    for img_id, boxes, emb in records:
        got_boxes, got_emb = cache.get(img_id)
        np.testing.assert_array_equal(got_boxes.numpy(), boxes)
        # embeddings are stored as float16: absolute error below 1e-3 for unit vectors
        np.testing.assert_allclose(got_emb.numpy(), emb, atol=1e-3)
        assert got_emb.dtype == torch.float32


def test_round_trip_over_several_shards(tmp_path):
    records = _records()
    cache = write_region_cache(tmp_path / 'cache', records, 'teacher-a', 'rpn', shard_size=2)
    _assert_holds(cache, records)
    meta = json.loads((tmp_path / 'cache' / 'meta.json').read_text())
    assert meta['num_regions'] == 12 and meta['embed_dim'] == 8 and meta['num_shards'] == 3
    assert meta['version'] == 3 and meta['region_source'] == 'crops'
    assert sorted(p.name for p in (tmp_path / 'cache').iterdir()) == sorted(
        ['meta.json', 'index.json'] + [f'shard-0000{i}-{kind}.npy' for i in range(3)
                                       for kind in ('boxes', 'embeddings')])
    assert isinstance(cache._shard(0)[1], np.memmap)  # memory-mapped, not loaded
    assert 7 in cache and 5 not in cache
    with pytest.raises(KeyError, match='not in the region cache'):
        cache.get(5)


def test_interrupted_build_is_never_read_and_resumes(tmp_path):
    records = _records()
    key = cache_key('teacher-a', 'rpn', 'crops', (1.0, 1.5), 32)
    ids = [r[0] for r in records]
    writer = RegionCacheWriter(tmp_path / 'c', key, ids, shard_size=2)
    for record in records[:3]:  # interrupted after 3 images: one shard of 2 is on disk
        writer.add(*record)
    del writer
    with pytest.raises(UnfinishedRegionCache, match='2 images embedded so far'):
        RegionEmbeddingCache(tmp_path / 'c')

    resumed = RegionCacheWriter(tmp_path / 'c', key, ids, shard_size=2)
    assert resumed.done == {3, 7}
    for record in records:
        if record[0] not in resumed.done:
            resumed.add(*record)
    _assert_holds(resumed.finish(), records)
    assert not (tmp_path / 'c' / 'progress.json').exists()


def test_unfinished_build_of_another_key_or_split_starts_again(tmp_path):
    records = _records()
    key = cache_key('teacher-a', 'rpn')
    ids = [r[0] for r in records]
    writer = RegionCacheWriter(tmp_path / 'c', key, ids, shard_size=1)
    writer.add(*records[0])
    assert RegionCacheWriter(tmp_path / 'c', key, ids, shard_size=1).done == {3}
    assert RegionCacheWriter(tmp_path / 'c', key, ids[:4], shard_size=1).done == set()
    writer = RegionCacheWriter(tmp_path / 'c', key, ids, shard_size=1)
    writer.add(*records[0])
    other_teacher = cache_key('teacher-b', 'rpn')
    assert RegionCacheWriter(tmp_path / 'c', other_teacher, ids).done == set()


def test_finish_refuses_missing_images_and_bad_records(tmp_path):
    records = _records()
    writer = RegionCacheWriter(tmp_path / 'c', cache_key('t', 'p'), [r[0] for r in records])
    writer.add(*records[0])
    with pytest.raises(ValueError, match='added twice'):
        writer.add(*records[0])
    with pytest.raises(KeyError, match='not among the images'):
        writer.add(99, np.zeros((1, 4)), np.zeros((1, 8)))
    with pytest.raises(ValueError, match='2 boxes but embeddings of shape'):
        writer.add(7, np.zeros((2, 4)), np.zeros((3, 8)))
    with pytest.raises(RuntimeError, match='misses 4 images'):
        writer.finish()
    with pytest.raises(UnfinishedRegionCache):
        RegionEmbeddingCache(tmp_path / 'c')


def test_refuses_to_overwrite_a_folder_that_is_not_a_cache(tmp_path):
    (tmp_path / 'notes.txt').write_text('precious')
    with pytest.raises(FileExistsError, match='holds no region cache'):
        RegionCacheWriter(tmp_path, cache_key('t', 'p'))
    assert (tmp_path / 'notes.txt').read_text() == 'precious'


def test_key_mismatches_are_named(tmp_path):
    cache = write_region_cache(tmp_path / 'c', _records(), 'a' * 64, 'sha256:1234',
                               region_source='dense', scales=(1.0,), num_proposals=16)
    cache.check(teacher_fingerprint='a' * 64, proposal_source='sha256:1234',
                region_source='dense', scales=[1], num_proposals=16)
    with pytest.raises(RegionCacheMismatch, match=r"teacher_fingerprint: cache has aaaaaaaaaaaa, "
                       r"expected bbbbbbbbbbbb.*another teacher"):
        cache.check(teacher_fingerprint='b' * 64)
    with pytest.raises(RegionCacheMismatch, match=r"region_source: cache has 'dense', expected "
                       r"'crops'; scales: cache has \[1.0\], expected \[1.0, 1.5\]"):
        cache.check(region_source='crops', scales=(1.0, 1.5))
    with pytest.raises(RegionCacheMismatch, match='proposal_source'):
        cache.check(proposal_source='sha256:9999')


def test_version_1_caches_are_still_read(tmp_path):
    """The layout written before shards: one pair of arrays, index of [start, count]."""
    records = _records()
    root = tmp_path / 'v1'
    root.mkdir()
    index, start = {}, 0
    for img_id, boxes, _ in records:
        index[img_id] = [start, len(boxes)]
        start += len(boxes)
    np.save(root / 'boxes.npy', np.concatenate([r[1] for r in records]))
    np.save(root / 'embeddings.npy', np.concatenate([r[2] for r in records]).astype(np.float16))
    (root / 'index.json').write_text(json.dumps(index))
    (root / 'meta.json').write_text(json.dumps(dict(
        version=1, teacher_fingerprint='t' * 64, proposal_source='/old/path/iter_1500.pth',
        num_images=5, num_regions=start, embed_dim=8, num_proposals=32, scales=[1.0, 1.5])))
    cache = RegionEmbeddingCache(root)
    _assert_holds(cache, records)
    # read, but not used for training: its crops were padded past the border (version < 3);
    # the proposal source of a version-1 cache is a path, not a content hash: not compared
    with pytest.raises(RegionCacheMismatch, match='crops: cache version 1 padded') as error:
        cache.check(teacher_fingerprint='t' * 64, proposal_source='sha256:abc',
                    region_source='crops', scales=(1.0, 1.5), num_proposals=32)
    assert 'proposal_source' not in str(error.value) and 'teacher' not in str(error.value)
    with pytest.raises(RegionCacheMismatch, match='teacher'):
        cache.check(teacher_fingerprint='u' * 64)


def test_crop_caches_before_version_3_are_refused(tmp_path):
    """Crops padded with black past the border (version 2) are other targets; a dense
    cache of version 2 is still valid."""
    for source in ('crops', 'dense'):
        cache = write_region_cache(tmp_path / source, _records(), 'a' * 64, 'sha256:1',
                                   region_source=source)
        meta_file = tmp_path / source / 'meta.json'
        meta = json.loads(meta_file.read_text())
        meta_file.write_text(json.dumps(dict(meta, version=2)))
        cache = RegionEmbeddingCache(tmp_path / source)
        if source == 'crops':
            with pytest.raises(RegionCacheMismatch, match='version 2 padded'):
                cache.check(teacher_fingerprint='a' * 64, region_source='crops')
        else:
            cache.check(teacher_fingerprint='a' * 64, region_source='dense')


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
