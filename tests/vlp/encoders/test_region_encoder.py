"""RegionFeatureEncoder: the geometry embedding and the tokens against a numpy computation
from the UNITER formula, padding invariance, masked regions and the whole-image token."""
import numpy as np
import pytest
import torch

from vlkd.registry import MODELS
from vlkd.vlp.encoders import (RegionFeatureEncoder, RegionSet, box_geometry,
                               collate_regions)

FEATURE_DIM, NUM_CLASSES = 6, 4


def region_set(n, seed, size=(60, 80)):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([size[1] / 2, size[0] / 2])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([size[1] / 2, size[0] / 2]) + 1
    probs = torch.rand(n, NUM_CLASSES, generator=g).softmax(-1)
    return RegionSet(torch.cat([xy, xy + wh], 1), torch.randn(n, FEATURE_DIM, generator=g),
                     probs, size)


def numpy_tokens(encoder, features, boxes, image_size):
    """LayerNorm(W_f f + b_f + W_g g + b_g), g from the box and image size by hand."""
    h, w = image_size
    rows = []
    for f, (x1, y1, x2, y2) in zip(features, boxes):
        bw, bh = (x2 - x1) / w, (y2 - y1) / h
        g = np.array([x1 / w, y1 / h, x2 / w, y2 / h, bw, bh, bw * bh])
        p = {k: v.detach().double().numpy() for k, v in encoder.state_dict().items()}
        z = p['feature_projection.weight'] @ f + p['feature_projection.bias'] \
            + p['geometry_projection.weight'] @ g + p['geometry_projection.bias']
        z = (z - z.mean()) / np.sqrt(z.var() + 1e-5)
        rows.append(z * p['norm.weight'] + p['norm.bias'])
    return np.stack(rows)


def test_geometry_against_a_loop():
    sets = [region_set(3, 0), region_set(2, 1, size=(100, 40))]
    batch = collate_regions(sets)
    geometry = box_geometry(batch.boxes, batch.image_sizes)
    for i, regions in enumerate(sets):
        h, w = regions.image_size
        for j, (x1, y1, x2, y2) in enumerate(regions.boxes.tolist()):
            expected = [x1 / w, y1 / h, x2 / w, y2 / h, (x2 - x1) / w, (y2 - y1) / h,
                        (x2 - x1) * (y2 - y1) / (w * h)]
            np.testing.assert_allclose(geometry[i, j].numpy(), expected, rtol=1e-6)


def test_tokens_follow_the_formula_and_ignore_padding():
    torch.manual_seed(0)
    encoder = MODELS.build(dict(type='RegionFeatureEncoder', out_dim=8,
                                feature_dim=FEATURE_DIM))
    sets = [region_set(3, 0), region_set(5, 1, size=(100, 40))]
    out = encoder(collate_regions(sets))
    assert out.tokens.shape == (2, 5, 8)
    assert out.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    for i, regions in enumerate(sets):
        n = len(regions.boxes)
        expected = numpy_tokens(encoder, regions.features.double().numpy(),
                                regions.boxes.double().numpy(), regions.image_size)
        np.testing.assert_allclose(out.tokens[i, :n].detach().numpy(), expected, atol=1e-5)
        alone = encoder(collate_regions([regions]))
        torch.testing.assert_close(out.tokens[i, :n], alone.tokens[0])
        torch.testing.assert_close(out.cls[i], alone.cls[0])
        torch.testing.assert_close(out.cls[i], out.tokens[i, :n].mean(0))
        torch.testing.assert_close(out.class_probs[i, :n], regions.class_probs)
        torch.testing.assert_close(out.features[i, :n], regions.features)


def test_masked_regions_keep_geometry_and_targets():
    torch.manual_seed(0)
    encoder = RegionFeatureEncoder(out_dim=8, feature_dim=FEATURE_DIM)
    regions = region_set(3, 0)
    batch = collate_regions([regions])
    masked = torch.tensor([[False, True, False]])
    out = encoder(batch, masked_regions=masked)
    zeroed = regions.features.clone()
    zeroed[1] = 0
    expected = numpy_tokens(encoder, zeroed.double().numpy(), regions.boxes.double().numpy(),
                            regions.image_size)
    np.testing.assert_allclose(out.tokens[0].detach().numpy(), expected, atol=1e-5)
    torch.testing.assert_close(out.features[0], regions.features)  # regression targets


def test_whole_image_token():
    torch.manual_seed(0)
    encoder = RegionFeatureEncoder(out_dim=8, feature_dim=FEATURE_DIM, image_token=True)
    sets = [region_set(2, 0), region_set(4, 1, size=(100, 40))]
    out = encoder(collate_regions(sets))
    assert encoder.num_prefix_tokens == 1 and out.tokens.shape == (2, 5, 8)
    assert out.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    for i, regions in enumerate(sets):
        h, w = regions.image_size
        expected = numpy_tokens(encoder, regions.features.double().mean(0, keepdim=True).numpy(),
                                np.array([[0.0, 0.0, w, h]]), regions.image_size)
        np.testing.assert_allclose(out.tokens[i, 0].detach().numpy(), expected[0], atol=1e-5)
        torch.testing.assert_close(out.class_probs[i, 0], regions.class_probs.mean(0))
    torch.testing.assert_close(out.cls, out.tokens[:, 0])


def test_bad_inputs():
    encoder = RegionFeatureEncoder(out_dim=8, feature_dim=FEATURE_DIM)
    with pytest.raises(ValueError, match='feature_dim'):
        RegionFeatureEncoder(out_dim=8)
    batch = collate_regions([region_set(2, 0)])
    batch.mask[:] = False
    with pytest.raises(ValueError, match='Image 0 of the batch has no regions'):
        encoder(batch)
    wrong = collate_regions([RegionSet(torch.tensor([[0., 0., 1., 1.]]), torch.zeros(1, 3),
                                       torch.ones(1, 1), (4, 4))])
    with pytest.raises(ValueError, match=r'\(B, N, 6\)'):
        encoder(wrong)
    with pytest.raises(ValueError, match='no detector'):
        encoder(images=torch.zeros(1, 3, 8, 8))
