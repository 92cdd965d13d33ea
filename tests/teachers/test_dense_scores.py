"""MaskCLIP's score refinements against per-location loops written from their description
(numpy), and Teacher.dense_scores wiring them to encode_dense."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import OpenCLIPTeacher
from vlkd.teachers.dense_scores import (REMOVED, dense_class_scores, key_smoothing,
                                        prompt_denoising)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def random_scores(seed=0, shape=(2, 4, 3, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 0.1 + 0.2  # cosine-like values


def test_class_scores_are_cosines():
    g = torch.Generator().manual_seed(0)
    dense = F.normalize(torch.randn(2, 8, 3, 4, generator=g), dim=1)
    classes = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    scores = dense_class_scores(dense, classes)
    assert scores.shape == (2, 5, 3, 4)
    assert torch.isclose(scores[1, 3, 2, 0], dense[1, :, 2, 0] @ classes[3])
    with pytest.raises(ValueError, match='share D'):
        dense_class_scores(dense, classes[:, :4])


def test_prompt_denoising_removes_classes_never_confident_in_an_image():
    scores = random_scores()
    scores[:, 2] = 0.15  # class 2 never leads ...
    scores[0, 2, 1, 1] = 0.9  # ... except at one location of image 0
    threshold = 0.5
    got = prompt_denoising(scores, threshold)
    s = scores.numpy().astype(np.float64)
    for b in range(2):
        for c in range(4):
            best = max(softmax(100 * s[b, :, i, j])[c] for i in range(3) for j in range(5))
            expected = s[b, c] if best >= threshold else np.full((3, 5), REMOVED)
            np.testing.assert_allclose(got[b, c].numpy(), expected, rtol=1e-6)
    assert (got[0, 2] == scores[0, 2]).all() and (got[1, 2] == REMOVED).all()


def test_key_smoothing_replaces_unsure_locations_by_key_weighted_sums():
    scores = random_scores(1)
    scores[1, 0, 0, :] = 0.8  # confident locations in image 1, row 0
    keys = torch.randn(2, 6, 3, 5, generator=torch.Generator().manual_seed(2))
    threshold = 0.9
    confident = (100 * scores).softmax(dim=1).amax(dim=1) >= threshold
    assert confident.any() and not confident.all()  # both branches are exercised
    got = key_smoothing(scores, keys, threshold)
    s, k = scores.numpy().astype(np.float64), keys.numpy().astype(np.float64)
    for b in range(2):
        locations = [(i, j) for i in range(3) for j in range(5)]
        probs = {loc: softmax(100 * s[b, :, loc[0], loc[1]]) for loc in locations}
        for (i, j) in locations:
            if probs[(i, j)].max() >= threshold:
                expected = probs[(i, j)]
            else:
                ki = k[b, :, i, j] / np.linalg.norm(k[b, :, i, j])
                expected = sum(ki @ (k[b, :, m, n] / np.linalg.norm(k[b, :, m, n]))
                               * probs[(m, n)] for (m, n) in locations)
            np.testing.assert_allclose(got[b, :, i, j].numpy(), expected, rtol=1e-4,
                                       atol=1e-6)
    with pytest.raises(ValueError, match='keys must be'):
        key_smoothing(scores, keys[:, :, :2], threshold)
    with pytest.raises(ValueError, match=r'scores must be a \(B, C, h, w\)'):
        prompt_denoising(scores[0], 0.5)


def test_teacher_dense_scores_chain_the_refinements(tiny_clip_cfg):
    torch.manual_seed(0)
    teacher = OpenCLIPTeacher(model_cfg=tiny_clip_cfg)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 255
    classes = teacher.encode_text(['a star', 'a circle', 'a heart'])
    dense, keys = teacher.encode_dense(images, return_keys=True)
    plain = dense_class_scores(dense, classes)
    torch.testing.assert_close(teacher.dense_scores(images, classes), plain)
    torch.testing.assert_close(
        teacher.dense_scores(images, classes, prompt_denoising=0.4, key_smoothing=1.0,
                             logit_scale=50.0),
        key_smoothing(prompt_denoising(plain, 0.4, 50.0), keys, 1.0, 50.0))
