"""Pseudo-label and dense-feature distillation losses against loops written from their
formulas (numpy), and the zero-shot logits against the teacher's refinement functions'
definitions."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vlkd  # noqa: F401
from vlkd.registry import MODELS
from vlkd.seg import DenseFeatureDistillLoss, PseudoLabelLoss, zero_shot_logits

IGNORE = 255


def log_softmax(x):
    x = x - x.max()
    return x - np.log(np.exp(x).sum())


def pseudo_label_reference(student, teacher, gt, score_thr, unlabelled_only):
    """Per-pixel loop: teacher softmax -> confident argmax -> CE of the student."""
    batch, _, height, width = student.shape
    total, count = 0.0, 0
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                probs = np.exp(log_softmax(teacher[b, :, y, x]))
                if probs.max() < score_thr:
                    continue
                if unlabelled_only and gt[b, y, x] != IGNORE:
                    continue
                total -= log_softmax(student[b, :, y, x])[probs.argmax()]
                count += 1
    return total / count, count


@pytest.mark.parametrize('score_thr, unlabelled_only', [(0.0, False), (0.4, False),
                                                        (0.3, True)])
def test_pseudo_label_loss_matches_loop(score_thr, unlabelled_only):
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 5, 6, 7, generator=g)
    teacher = 2 * torch.randn(2, 5, 6, 7, generator=g)
    gt = torch.randint(0, 5, (2, 6, 7), generator=g)
    gt[torch.rand(2, 6, 7, generator=g) < 0.5] = IGNORE
    expected, count = pseudo_label_reference(student.numpy(), teacher.numpy(), gt.numpy(),
                                             score_thr, unlabelled_only)
    assert 0 < count < 2 * 6 * 7 or score_thr == 0.0
    loss = PseudoLabelLoss(score_thr=score_thr, unlabelled_only=unlabelled_only,
                           loss_weight=2.0)(student, teacher, gt)
    assert loss.item() == pytest.approx(2.0 * expected, rel=1e-5)


def test_pseudo_labels_are_resized_teacher_argmax():
    """A teacher map at half resolution: labels are the argmax of its bilinear upsampling."""
    teacher = torch.zeros(1, 3, 2, 2)
    teacher[0, 0, 0, 0] = teacher[0, 1, 0, 1] = teacher[0, 2, 1, :] = 5.0
    labels = PseudoLabelLoss(score_thr=0.9).pseudo_labels(teacher, (4, 4))
    # corners are copies of the source cells; their softmax confidence is 0.987
    assert labels[0, 0, 0] == 0 and labels[0, 0, 3] == 1 and labels[0, 3, 0] == 2
    assert labels[0, 3, 3] == 2
    # mixed cells are unsure: below 0.9 -> ignored
    assert (labels == IGNORE).any()


def test_pseudo_label_loss_without_confident_pixels_is_zero_with_gradient():
    student = torch.randn(1, 4, 3, 3, requires_grad=True)
    loss = PseudoLabelLoss(score_thr=0.9)(student, torch.zeros(1, 4, 3, 3), size=(3, 3))
    loss.backward()
    assert loss.item() == 0.0 and student.grad is not None


def test_pseudo_label_loss_checks():
    with pytest.raises(ValueError, match='score_thr'):
        PseudoLabelLoss(score_thr=1.0)
    with pytest.raises(ValueError, match='share batch and classes'):
        PseudoLabelLoss()(torch.zeros(1, 4, 2, 2), torch.zeros(1, 3, 2, 2), size=(2, 2))
    with pytest.raises(ValueError, match='needs the ground-truth'):
        PseudoLabelLoss(unlabelled_only=True)(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2),
                                              size=(2, 2))


@pytest.mark.parametrize('mode', ['l1', 'cosine'])
def test_dense_feature_loss_matches_loop(mode):
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 8, 3, 4, generator=g), torch.randn(2, 8, 3, 4, generator=g)
    s, t = student.numpy(), teacher.numpy()
    distances = []
    for b in range(2):
        for y in range(3):
            for x in range(4):
                u = s[b, :, y, x] / np.linalg.norm(s[b, :, y, x])
                v = t[b, :, y, x] / np.linalg.norm(t[b, :, y, x])
                distances.append(np.abs(u - v).sum() if mode == 'l1' else 1 - u @ v)
    loss = MODELS.build(dict(type='DenseFeatureDistillLoss', mode=mode, loss_weight=0.5))(
        student, teacher)
    assert loss.item() == pytest.approx(0.5 * np.mean(distances), rel=1e-5)


def test_dense_feature_loss_resizes_the_teacher():
    """A teacher map constant per half: bilinear upsampling keeps each half's vector far
    from the border, so a student equal to it there has zero loss there."""
    teacher = torch.zeros(1, 2, 1, 2)
    teacher[0, 0, 0, 0] = 1.0  # left: e_0
    teacher[0, 1, 0, 1] = 1.0  # right: e_1
    student = torch.zeros(1, 2, 1, 8)
    student[0, 0, 0, :4] = 1.0
    student[0, 1, 0, 4:] = 1.0
    upsampled = F.interpolate(teacher, size=(1, 8), mode='bilinear', align_corners=False)
    expected = (1 - F.normalize(upsampled, dim=1)[0, :, 0].T.mul(student[0, :, 0].T).sum(1))
    loss = DenseFeatureDistillLoss(mode='cosine')(student, teacher)
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-6)
    assert expected[0] == pytest.approx(0.0, abs=1e-6) and expected[3] > 0


def test_dense_feature_loss_checks():
    with pytest.raises(ValueError, match='mode'):
        DenseFeatureDistillLoss(mode='l2')
    with pytest.raises(ValueError, match='same B and D'):
        DenseFeatureDistillLoss()(torch.zeros(1, 4, 2, 2), torch.zeros(1, 3, 2, 2))


def test_zero_shot_logits_and_prompt_denoising():
    """logit_scale * cosine; with denoising, classes whose softmax never reaches the
    threshold in an image are pushed far below the others (computed here by hand)."""
    g = torch.Generator().manual_seed(2)
    dense = F.normalize(torch.randn(2, 6, 3, 3, generator=g), dim=1)
    classes = F.normalize(torch.randn(4, 6, generator=g), dim=1)
    plain = zero_shot_logits(dense, classes, logit_scale=10.0)
    cosine = np.einsum('bdhw,cd->bchw', dense.numpy(), classes.numpy())
    np.testing.assert_allclose(plain.numpy(), 10.0 * cosine, rtol=1e-5, atol=1e-6)
    denoised = zero_shot_logits(dense, classes, logit_scale=10.0, prompt_denoising=0.5)
    probs = np.exp(10 * cosine) / np.exp(10 * cosine).sum(1, keepdims=True)
    absent = probs.max(axis=(2, 3)) < 0.5  # (B, C)
    assert absent.any() and not absent.all()
    for b in range(2):
        for c in range(4):
            if absent[b, c]:
                assert (denoised[b, c] < plain[b].min() - 100).all()
            else:
                np.testing.assert_allclose(denoised[b, c], plain[b, c], rtol=1e-6)
