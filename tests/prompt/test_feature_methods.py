"""Tip-Adapter(-F), the linear probe, CLIP-Adapter, VPT and the padding prompt against
formulas written out here (numpy loops) and the teacher's public interface."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

from vlkd.evaluation.linear_probe import fit_logistic_regression
from vlkd.prompt import (VPT, CLIPAdapter, FeatureCache, LinearProbe, TipAdapter,
                         VisualPaddingPrompt)
from vlkd.prompt.classifier import ClassVocabularyError

NAMES = ['circle', 'square', 'triangle', 'star']


def _images(batch=4, seed=0, size=32):
    """Float RGB images with integer values, as decoded images are."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), generator=g).float()


def zero_shot(teacher, images, names, scale):
    return scale * teacher.encode_image(images) @ teacher.encode_class_names(names).T


def _batch(images, labels, indices):
    """A data batch as the pipeline packs it: uint8 BGR images, samples with gt_label and
    sample_idx."""
    samples = [BaseDataElement(metainfo=dict(sample_idx=int(i)), gt_label=torch.tensor(int(y)))
               for y, i in zip(labels, indices)]
    bgr = images.flip(1).round().clamp(0, 255).to(torch.uint8)
    return dict(inputs=list(bgr), data_samples=samples)


def _train(model, batches, lr=0.01):
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=lr))
    return [model.train_step(batch, wrapper) for batch in batches]


def test_feature_cache_means_match_numpy():
    cache = FeatureCache(3)
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 3, generator=g) for _ in range(3)]
    order = [torch.tensor([2, 0, 3, 1]), torch.tensor([1, 3, 0, 2]), torch.tensor([0, 1, 2, 3])]
    labels = torch.tensor([5, 6, 7, 8])
    for view, index in zip(views, order):
        cache.add(index, view, labels[index])
    features, got_labels = cache.means()
    expected = np.zeros((4, 3))
    for view, index in zip(views, order):
        for row, sample in enumerate(index.tolist()):
            expected[sample] += view[row].numpy() / 3
    np.testing.assert_allclose(features.numpy(), expected, rtol=1e-6)
    assert got_labels.tolist() == [5, 6, 7, 8]
    assert cache.views_of(torch.tensor([0, 3, 9])).tolist() == [3, 3, 0]
    with pytest.raises(ValueError, match='Sample 2 came with label 1 after label 7'):
        cache.add(torch.tensor([2]), views[0][:1], torch.tensor([1]))


def test_tip_adapter_with_alpha_zero_is_zero_shot_clip(teacher):
    model = TipAdapter(teacher, NAMES, alpha=0.0)
    images = _images()
    torch.testing.assert_close(model(images),
                               zero_shot(teacher, images, NAMES, model.logit_scale))


def test_tip_adapter_logits_match_the_formula(teacher):
    model = TipAdapter(teacher, NAMES, alpha=1.7, beta=3.0, cache_epochs=2)
    train = _images(6, seed=1)
    labels, indices = [0, 1, 2, 3, 1, 0], list(range(6))
    flipped = train.flip(3)  # a second "view" of each image
    _train(model, [_batch(train, labels, indices), _batch(flipped, labels, indices)])
    with pytest.raises(RuntimeError, match='nothing to train after its 2 cache epoch'):
        _train(model, [_batch(train, labels, indices)])
    # the formula with loops: keys = normalised mean embedding of the two views
    u, v = teacher.encode_image(train).numpy(), teacher.encode_image(flipped).numpy()
    keys = [(u[i] + v[i]) / 2 for i in range(6)]
    keys = [k / np.linalg.norm(k) for k in keys]
    test = _images(3, seed=2)
    f = teacher.encode_image(test).numpy()
    expected = zero_shot(teacher, test, NAMES + ['heart'], model.logit_scale).numpy()
    for b in range(3):
        for i in range(6):
            expected[b, labels[i]] += 1.7 * np.exp(-3.0 * (1 - f[b] @ keys[i]))
    got = model.logits(model.teacher_pixels(test), NAMES + ['heart'])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    # a vocabulary in another order reads the cache by name
    reordered = model.logits(model.teacher_pixels(test), ['heart', 'star', 'circle'])
    np.testing.assert_allclose(reordered.numpy(), expected[:, [4, 3, 0]], rtol=1e-5, atol=1e-5)


def test_tip_adapter_f_learns_keys_from_the_cache(teacher):
    model = TipAdapter(teacher, NAMES, cache_epochs=1, finetune=True)
    assert model.keys.shape == (0, 32)
    train, labels = _images(4, seed=1), [0, 1, 2, 3]
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=0.01))
    log = model.train_step(_batch(train, labels, range(4)), wrapper)
    assert float(log['cached_samples']) == 4 and model.keys.numel() == 0
    model.train_step(_batch(train, labels, range(4)), wrapper)  # first fine-tuning step
    initial = F.normalize(teacher.encode_image(train), dim=-1)
    assert model.keys.shape == (4, 32)
    assert not torch.allclose(model.keys.detach(), initial)  # one AdamW step taken
    torch.testing.assert_close(model.keys.detach(), initial, atol=0.011, rtol=0)
    # a checkpoint restores the learned keys and the cache into a fresh model
    fresh = TipAdapter(teacher, NAMES, cache_epochs=1, finetune=True)
    fresh.load_state_dict(model.state_dict())
    test = _images(2, seed=3)
    torch.testing.assert_close(fresh(test), model(test))


def test_caching_needs_whole_epochs(teacher):
    model = TipAdapter(teacher, NAMES, cache_epochs=1, finetune=True)
    train = _images(4, seed=1)
    _train(model, [_batch(train[:2], [0, 1], [0, 1])])
    with pytest.raises(RuntimeError, match='mixes samples seen fewer'):
        _train(model, [_batch(train, [0, 1, 2, 3], [0, 1, 2, 3])])
    batch = _batch(train, [0, 1, 2, 3], [0, 1, 2, 3])
    batch['data_samples'] = [BaseDataElement(gt_label=s.gt_label) for s in batch['data_samples']]
    with pytest.raises(ValueError, match='need the sample_idx of every training sample'):
        _train(model, [batch])


def test_linear_probe_is_the_evaluation_probe_on_the_cache(teacher):
    model = LinearProbe(teacher, NAMES + ['heart'], val_fraction=0.25, max_iter=30)
    train = _images(12, seed=4)
    labels = [0, 1, 2, 3] * 3  # no 'heart' sample
    _train(model, [_batch(train, labels, range(12))])
    test = _images(5, seed=5)
    logits = model.logits(model.teacher_pixels(test), NAMES + ['heart'])
    c = float(model.regularization)
    probe = fit_logistic_regression(F.normalize(teacher.encode_image(train), dim=-1),
                                    torch.tensor(labels), c, max_iter=30)
    expected = probe.logits(F.normalize(teacher.encode_image(test), dim=-1))
    torch.testing.assert_close(logits[:, :4].double(), expected, rtol=1e-4, atol=1e-4)
    assert torch.isinf(logits[:, 4]).all() and (logits[:, 4] < 0).all()
    assert int(model.fitted_views) == 12
    fresh = LinearProbe(teacher, NAMES + ['heart'], max_iter=30)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.logits(fresh.teacher_pixels(test), NAMES), logits[:, :4])
    with pytest.raises(ClassVocabularyError, match='cannot score'):
        LinearProbe(teacher, NAMES, test_classes=NAMES + ['crescent'])


def test_clip_adapter_residual_ratio(teacher):
    images = _images()
    zero = CLIPAdapter(teacher, NAMES, ratio=0.0)
    torch.testing.assert_close(zero(images), zero_shot(teacher, images, NAMES, zero.logit_scale))
    model = CLIPAdapter(teacher, NAMES, ratio=0.3, reduction=4)
    assert model.adapter[0].weight.shape == (8, 32)
    features = teacher.model.encode_image(model.teacher_pixels(images))
    hidden = torch.relu(features @ model.adapter[0].weight.T)
    adapted = 0.3 * torch.relu(hidden @ model.adapter[2].weight.T) + 0.7 * features
    expected = model.logit_scale * F.normalize(adapted, dim=-1) @ \
        teacher.encode_class_names(NAMES).T
    torch.testing.assert_close(model(images), expected, rtol=1e-5, atol=1e-5)


def test_padding_prompt_touches_only_the_frame(teacher):
    model = VisualPaddingPrompt(teacher, NAMES, pad_size=4)
    frame = model.prompt.frame()[0]
    assert frame.shape == (3, 32, 32)
    assert torch.all(frame[:, 4:28, 4:28] == 0)
    assert torch.all(frame[:, :4] != 0) and torch.all(frame[:, :, -4:] != 0)
    with torch.no_grad():
        for p in model.prompt.parameters():
            p.zero_()
    images = _images()
    torch.testing.assert_close(model(images), zero_shot(teacher, images, NAMES,
                                                         model.logit_scale))
    with pytest.raises(ValueError, match='pad_size must be in'):
        VisualPaddingPrompt(teacher, NAMES, pad_size=16)


@pytest.mark.parametrize('deep', [False, True])
def test_vpt_prompt_shapes_and_init(teacher, deep):
    model = VPT(teacher, NAMES, num_prompts=5, deep=deep)
    assert model.prompts.shape == (2 if deep else 1, 5, 32)
    bound = (6 / (3 * 64 + 32)) ** 0.5
    assert model.prompts.abs().max() <= bound
    loss = model(_images()).logsumexp(1).sum()
    loss.backward()
    assert model.prompts.grad.abs().sum() > 0


@pytest.mark.parametrize('method, kwargs', [(VPT, {}), (CLIPAdapter, {}), (TipAdapter, {}),
                                            (VisualPaddingPrompt, dict(pad_size=4))])
def test_methods_without_text_prompts_refuse_to_export(teacher, method, kwargs):
    with pytest.raises(ClassVocabularyError, match='learns no text prompts.*tools/embed_text.py '
                       '--teacher'):
        method(teacher, NAMES, **kwargs).class_embeddings(NAMES)


def test_checkpoint_of_another_teacher_is_refused(teacher, teacher_cfg):
    from vlkd.teachers import build_teacher
    trained = CLIPAdapter(teacher, NAMES)
    torch.manual_seed(1)
    other = build_teacher(dict(teacher_cfg, pretrained=None))  # same architecture
    with pytest.raises(ClassVocabularyError, match='trained with teacher .* the config builds '
                       'teacher'):
        CLIPAdapter(other, NAMES).load_state_dict(trained.state_dict())
