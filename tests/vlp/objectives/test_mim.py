"""MIM: patchify against a pixel loop, the pixel / feature regression losses (l1, l2,
normalised targets) against numpy loops, and masked multimodal modelling as the sum of its
two objectives on jointly masked inputs."""
import numpy as np
import pytest
import torch

from vlkd.registry import MODELS
from vlkd.vlp.objectives.mim import MaskedImageModelingLoss, patchify


def test_patchify_matches_a_pixel_loop():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)
    assert patches.shape == (2, 6, 12)
    for b in range(2):
        for n in range(6):
            row, col = divmod(n, 3)
            expected = [images[b, c, 2 * row + i, 2 * col + j].item()
                        for i in range(2) for j in range(2) for c in range(3)]
            assert patches[b, n].tolist() == expected
    with pytest.raises(ValueError, match='not a multiple of the patch size 4'):
        patchify(images, 4)


def reference(prediction, target, mask, loss_type, normalize):
    errors = []
    for b in range(mask.shape[0]):
        for n in range(mask.shape[1]):
            if not mask[b, n]:
                continue
            t = target[b, n]
            if normalize:
                t = (t - t.mean()) / np.sqrt(t.var() + 1e-6)
            diff = prediction[b, n] - t
            errors.extend(np.abs(diff) if loss_type == 'l1' else diff ** 2)
    return np.mean(errors)


@pytest.mark.parametrize('loss_type,normalize', [('l1', False), ('l2', True)])
def test_pixel_regression_on_masked_patches(loss_type, normalize):
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='MaskedImageModelingLoss', hidden_dim=5, patch_size=2,
                             loss_type=loss_type, normalize_target=normalize)).double()
    images = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    hidden = torch.randn(2, 4, 5, dtype=torch.float64)
    mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    with torch.no_grad():
        prediction = loss.head(hidden).numpy()
    target = patchify(images, 2).numpy()  # layout checked above
    expected = reference(prediction, target, mask.numpy(), loss_type, normalize)
    assert loss(hidden, images, mask).item() == pytest.approx(expected, rel=1e-10)


def test_feature_regression_and_errors():
    torch.manual_seed(1)
    loss = MaskedImageModelingLoss(hidden_dim=5, feature_dim=3, loss_type='l2').double()
    hidden, features = torch.randn(2, 4, 5).double(), torch.randn(2, 4, 3).double()
    mask = torch.tensor([[False, True, True, False], [True, True, False, False]])
    with torch.no_grad():
        prediction = loss.head(hidden).numpy()
    expected = reference(prediction, features.numpy(), mask.numpy(), 'l2', False)
    assert loss(hidden, features, mask).item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match=r'targets must be \(B, N, 3\)'):
        loss(hidden, features[..., :2], mask)
    with pytest.raises(ValueError, match=r'mask must be bool \(B, N\) = \(2, 4\)'):
        loss(hidden, features, mask.long())
    with pytest.raises(ValueError, match='exactly one of patch_size'):
        MaskedImageModelingLoss(hidden_dim=5, patch_size=2, feature_dim=3)


def test_masked_multimodal_modeling_sums_mlm_and_mim_on_joint_masks():
    torch.manual_seed(2)
    mmm = MODELS.build(dict(type='MaskedMultimodalModelingLoss',
                            mlm=dict(hidden_dim=8, vocab_size=30),
                            mim=dict(hidden_dim=8, patch_size=4), image_mask_ratio=0.5))
    ids = torch.randint(4, 30, (3, 12))
    ids[:, 0], ids[:, -1] = 1, 2
    patches = torch.randn(3, 4, 16)
    masked_ids, labels, masked_patches, image_mask = mmm.mask_inputs(
        ids, patches, mask_token_id=3, special_token_ids=(0, 1, 2, 3),
        patch_mask_embedding=torch.full((16,), 9.0), generator=torch.Generator().manual_seed(0))
    assert (image_mask.sum(1) == 2).all()
    assert (masked_patches[image_mask] == 9.0).all()
    assert torch.equal(masked_patches[~image_mask], patches[~image_mask])
    assert (labels[:, [0, -1]] == -100).all() and (labels != -100).any()
    assert torch.equal(labels[labels != -100], ids[labels != -100])

    text_hidden, image_hidden = torch.randn(3, 12, 8), torch.randn(3, 4, 8)
    images = torch.rand(3, 3, 8, 8)
    losses = mmm(text_hidden, labels, image_hidden, images, image_mask)
    torch.testing.assert_close(losses['loss_text'], mmm.mlm(text_hidden, labels))
    torch.testing.assert_close(losses['loss_image'], mmm.mim(image_hidden, images, image_mask))
    assert losses['loss_text'] > 0 and losses['loss_image'] > 0
