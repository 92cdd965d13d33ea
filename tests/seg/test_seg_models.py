"""Pixel-text head, open-vocabulary EncoderDecoder, dense views and cache, teacher zero-shot
segmentor: outputs against computations written here from the teacher's own embeddings."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import vlkd  # noqa: F401
from vlkd.registry import MODELS
from vlkd.seg import (DenseCacheMismatch, DenseTeacherCache, OpenVocabEncoderDecoder,
                      PseudoLabelLoss, SlidingWindowDense, TeacherZeroShotSegmentor)
from vlkd.teachers import build_teacher

from conftest import SHAPES_VOCABULARY

UNSEEN = ['star', 'heart', 'crescent']


def batch(size=32, num=2, seed=0, ignore_unseen=True):
    """Normalised-input-free batch: uint8-range images and data samples with labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num, 3, size, size), generator=g).float()
    samples = []
    for i in range(num):
        labels = torch.randint(0, 13, (1, size, size), generator=g)
        if ignore_unseen:
            unseen = [SHAPES_VOCABULARY.index(c) for c in UNSEEN]
            labels[torch.isin(labels, torch.tensor(unseen))] = 255
        sample = SegDataSample(gt_sem_seg=PixelData(data=labels))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size), img_path=f'img{i}.png'))
        samples.append(sample)
    return images, samples


def preprocess(model, images, samples):
    data = model.data_preprocessor(dict(inputs=list(images[:, [2, 1, 0]].byte()),
                                        data_samples=samples), training=True)
    return data['inputs'], data['data_samples']


def test_head_logits_are_scaled_cosines_to_the_teachers_text(student_cfg, tiny_teacher_cfg):
    model = MODELS.build(student_cfg())
    head = model.decode_head
    teacher = build_teacher(tiny_teacher_cfg)
    text = teacher.encode_class_names(SHAPES_VOCABULARY)  # its default (shapes) templates
    torch.testing.assert_close(head.train_embeddings, text)
    features = [torch.randn(2, 64, 4, 5)]
    embeddings = head.embed(features)
    logits = head.classify(embeddings)
    e = embeddings.detach().numpy()
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    classifier = text.numpy().copy()
    background = head.background_embedding.detach().numpy()
    classifier[0] = background / np.linalg.norm(background)  # learned background row
    expected = np.einsum('bdhw,cd->bchw', e, classifier) / 0.1
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_any_vocabulary_at_test_time(student_cfg):
    model = MODELS.build(student_cfg()).eval()
    head = model.decode_head
    assert model.num_classes == 13
    model.set_test_vocabulary(['background', 'moon', 'star'])
    assert model.num_classes == model.out_channels == 3
    images, samples = batch()
    inputs = model.data_preprocessor(dict(inputs=list(images.byte()), data_samples=samples))
    with torch.no_grad():
        result = model.test_step(dict(inputs=list(images.byte()), data_samples=samples))
    assert result[0].seg_logits.data.shape == (3, 32, 32)
    assert set(result[0].pred_sem_seg.data.unique().tolist()) <= {0, 1, 2}
    assert inputs['inputs'].shape == (2, 3, 32, 32)
    model.train()
    assert head.num_classes == 13  # training keeps its own vocabulary
    with pytest.raises(ValueError, match='another class list or another teacher'):
        model.set_test_vocabulary(['a', 'b'], embeddings=torch.randn(3, head.embed_dim))
    with pytest.raises(ValueError, match='repeats'):
        model.set_test_vocabulary(['a', 'a'])


def test_ground_truth_loss_ignores_unseen_pixels(student_cfg):
    model = MODELS.build(student_cfg())
    inputs, samples = preprocess(model, *batch())
    losses = model.loss(inputs, samples)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    # reference: mean CE over the labelled pixels of the logits resized to the labels
    with torch.no_grad():
        logits = model.decode_head.forward(model.extract_feat(inputs))
        logits = F.interpolate(logits, size=(32, 32), mode='bilinear', align_corners=False)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples]).numpy()
    z = logits.numpy().transpose(0, 2, 3, 1)[labels != 255]
    target = labels[labels != 255]
    log_probs = z - z.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    assert (labels == 255).any()
    assert losses['decode.loss_ce'].item() == pytest.approx(
        -log_probs[np.arange(len(target)), target].mean(), rel=1e-4)
    losses['decode.loss_ce'].backward()
    assert model.decode_head.background_embedding.grad.abs().sum() > 0


def test_distillation_step_uses_the_teachers_dense_embeddings(student_cfg, tiny_teacher_cfg):
    cfg = student_cfg(
        teacher=tiny_teacher_cfg,
        pseudo_label_loss=dict(type='PseudoLabelLoss', unlabelled_only=True),
        pseudo_label_classes=UNSEEN,
        feature_loss=dict(type='DenseFeatureDistillLoss', mode='cosine'))
    model = MODELS.build(cfg)
    images, samples = batch()
    inputs, samples = preprocess(model, images, samples)
    losses = model.loss(inputs, samples)
    assert {'decode.loss_ce', 'distill.loss_pseudo', 'distill.loss_feat'} <= set(losses)
    # the teacher is used but never part of the student
    assert all(not k.startswith('teacher') and '_teacher' not in k for k in model.state_dict())
    assert model._teacher is not None
    # reference: the teacher's MaskCLIP map of the RGB images, cosine to the text
    teacher = build_teacher(tiny_teacher_cfg)
    dense = teacher.encode_dense(images)
    with torch.no_grad():
        embeddings = model.decode_head.embed(model.extract_feat(inputs))
        logits = model.decode_head.classify(embeddings)
    cosine = torch.einsum('bdhw,cd->bchw', dense, model.decode_head.train_embeddings)
    unseen = torch.tensor([c in UNSEEN for c in SHAPES_VOCABULARY])
    teacher_logits = (100 * cosine).masked_fill(~unseen[None, :, None, None], -1e4)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    expected = PseudoLabelLoss(unlabelled_only=True)(logits, teacher_logits, labels)
    assert losses['distill.loss_pseudo'].item() == pytest.approx(expected.item(), rel=1e-4)
    pseudo = PseudoLabelLoss(unlabelled_only=True).pseudo_labels(teacher_logits, (32, 32),
                                                                 labels)
    assert set(pseudo.unique().tolist()) <= {4, 9, 10, 255}  # star, heart, crescent, ignored
    up = F.interpolate(dense, size=embeddings.shape[2:], mode='bilinear', align_corners=False)
    feat = (1 - (embeddings * F.normalize(up, dim=1)).sum(1)).mean()
    assert losses['distill.loss_feat'].item() == pytest.approx(feat.item(), rel=1e-4)


def test_segmentor_config_errors(student_cfg, tiny_teacher_cfg):
    with pytest.raises(ValueError, match='need a teacher'):
        MODELS.build(student_cfg(feature_loss=dict(type='DenseFeatureDistillLoss')))
    with pytest.raises(ValueError, match='Nothing to train'):
        MODELS.build(student_cfg(decode_head=dict(loss_decode=None)))
    with pytest.raises(ValueError, match='pseudo_label_classes'):
        MODELS.build(student_cfg(teacher=tiny_teacher_cfg, pseudo_label_classes=['moon'],
                                 pseudo_label_loss=dict(type='PseudoLabelLoss')))
    with pytest.raises(ValueError, match="background='learned' needs a class"):
        MODELS.build(student_cfg(decode_head=dict(train_classes=['circle', 'star'])))


def test_sliding_window_cells_are_window_embeddings(tiny_teacher_cfg):
    teacher = build_teacher(tiny_teacher_cfg)
    view = SlidingWindowDense(window=20, stride=12)
    images = torch.rand(2, 3, 30, 40) * 255
    dense, keys = view(teacher, images)
    assert keys is None and dense.shape == (2, teacher.embed_dim, 3, 4)  # ceil(30/12), ceil(40/12)
    for (i, j) in [(0, 0), (2, 3), (1, 2)]:
        cy, cx = (i + 0.5) * 12, (j + 0.5) * 12
        box = torch.tensor([[cx - 10, cy - 10, cx + 10, cy + 10]])
        crop = teacher.encode_regions(images[1:], [box])[0][0]
        torch.testing.assert_close(dense[1, :, i, j], crop, rtol=1e-4, atol=1e-5)


def test_dense_cache_round_trip_flips_and_keys(tmp_path, tiny_teacher_cfg, shapes_root):
    teacher = build_teacher(tiny_teacher_cfg)
    view = SlidingWindowDense(window=24, stride=16)
    paths = sorted(str(p) for p in (shapes_root / 'images' / 'train').glob('*.png'))[:3]
    cache = DenseTeacherCache(tmp_path / 'cache')
    key = dict(teacher_fingerprint=teacher.fingerprint, view=repr(view))
    assert not cache.check(key)
    cache.build(key, paths, lambda images: view(teacher, images)[0], batch_size=2)
    assert cache.check(key)
    from vlkd.seg.dense_cache import _read_rgb
    direct = view(teacher, torch.stack([_read_rgb(p) for p in paths[::-1]]))[0]
    torch.testing.assert_close(cache.get(paths[::-1]), direct, atol=2e-3, rtol=0)
    with pytest.raises(DenseCacheMismatch, match='was built for'):
        cache.check(dict(key, view='EncodeDense(size=None)'))
    with pytest.raises(KeyError, match='not in the dense cache'):
        cache.get([str(shapes_root / 'images' / 'val' / 'x.png')])
    from vlkd.seg.segmentor import _as_flipped
    flipped = _as_flipped(direct[0], dict(flip=True, flip_direction='horizontal'))
    torch.testing.assert_close(flipped, direct[0].flip(-1))


def test_teacher_zero_shot_segmentor_predicts_argmax_of_upsampled_similarity(
        tiny_teacher_cfg):
    model = MODELS.build(dict(
        type='TeacherZeroShotSegmentor', teacher=tiny_teacher_cfg, classes=SHAPES_VOCABULARY,
        synonyms=dict(background=['background', 'striped background']),
        data_preprocessor=dict(type='mmseg.SegDataPreProcessor', bgr_to_rgb=True)))
    assert isinstance(model, TeacherZeroShotSegmentor)
    images, samples = batch(seed=3)
    result = model.test_step(dict(inputs=list(images[:, [2, 1, 0]].byte()),
                                  data_samples=samples))
    teacher = build_teacher(tiny_teacher_cfg)
    words = teacher.encode_class_names(['background', 'striped background'])
    text = teacher.encode_class_names(SHAPES_VOCABULARY)
    text[0] = F.normalize(words.mean(0), dim=0)
    cosine = torch.einsum('bdhw,cd->bchw', teacher.encode_dense(images), text)
    expected = F.interpolate(cosine, size=(32, 32), mode='bilinear').argmax(1)
    for i in range(2):
        assert torch.equal(result[i].pred_sem_seg.data[0], expected[i])
    with pytest.raises(RuntimeError, match='not trained'):
        model.loss(images, samples)
