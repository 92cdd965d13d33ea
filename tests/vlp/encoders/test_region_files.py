"""The region file format: round trip, batching, and the errors for missing or bad files."""
import numpy as np
import pytest
import torch

from vlkd.vlp.encoders import RegionSet, collate_regions, load_region_file, save_region_file


def regions(n=3, k=5, f=4):
    g = torch.Generator().manual_seed(n)
    xy = torch.rand(n, 2, generator=g) * 20
    return RegionSet(torch.cat([xy, xy + 5], 1), torch.randn(n, f, generator=g),
                     torch.rand(n, k, generator=g).softmax(-1), (32, 48))


def test_round_trip_and_collate(tmp_path):
    original = [regions(3), regions(6)]
    for i, r in enumerate(original):
        save_region_file(tmp_path / f'{i}.npz', r)
    with np.load(tmp_path / '0.npz') as data:  # plain numpy archive with the documented keys
        assert sorted(data.files) == ['boxes', 'class_probs', 'features', 'image_size']
    loaded = [load_region_file(tmp_path / f'{i}.npz') for i in range(2)]
    for a, b in zip(original, loaded):
        torch.testing.assert_close(a.boxes, b.boxes)
        torch.testing.assert_close(a.features, b.features)
        torch.testing.assert_close(a.class_probs, b.class_probs)
        assert b.image_size == (32, 48)
    batch = collate_regions(loaded, max_regions=4)
    assert batch.features.shape == (2, 4, 4) and batch.class_probs.shape == (2, 4, 5)
    assert batch.mask.sum(1).tolist() == [3, 4]
    torch.testing.assert_close(batch.boxes[1], original[1].boxes[:4])  # first = most confident
    assert batch.image_sizes.tolist() == [[32, 48], [32, 48]]
    split = collate_regions(loaded).split()
    torch.testing.assert_close(split[0].features, original[0].features)
    assert len(split[1].boxes) == 6


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.npz does not exist'):
        load_region_file(tmp_path / 'missing.npz')
    (tmp_path / 'junk.npz').write_bytes(b'PK\x03\x04 not really a zip')
    with pytest.raises(ValueError, match='junk.npz is corrupt'):
        load_region_file(tmp_path / 'junk.npz')
    np.save(tmp_path / 'single.npy', np.zeros(3))
    with pytest.raises(ValueError, match='single array'):
        load_region_file(tmp_path / 'single.npy')
    np.savez(tmp_path / 'partial.npz', boxes=np.zeros((1, 4)), features=np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"lacks \['class_probs', 'image_size'\]"):
        load_region_file(tmp_path / 'partial.npz')


def test_inconsistent_contents(tmp_path):
    good = regions(3)
    np.savez(tmp_path / 'count.npz', boxes=good.boxes.numpy(), features=good.features[:2].numpy(),
             class_probs=good.class_probs.numpy(), image_size=np.array([32, 48]))
    with pytest.raises(ValueError, match=r'count.npz: features must be \(N, ·\) with N = 3'):
        load_region_file(tmp_path / 'count.npz')
    np.savez(tmp_path / 'probs.npz', boxes=good.boxes.numpy(), features=good.features.numpy(),
             class_probs=good.class_probs.numpy() * 2, image_size=np.array([32, 48]))
    with pytest.raises(ValueError, match='not probability distributions'):
        load_region_file(tmp_path / 'probs.npz')
    flipped = good.boxes.numpy()[:, [2, 3, 0, 1]]
    np.savez(tmp_path / 'boxes.npz', boxes=flipped, features=good.features.numpy(),
             class_probs=good.class_probs.numpy(), image_size=np.array([32, 48]))
    with pytest.raises(ValueError, match='x2 < x1'):
        load_region_file(tmp_path / 'boxes.npz')
    with pytest.raises(ValueError, match='differ in feature / class dimension'):
        collate_regions([regions(2, f=4), regions(2, f=8)])
