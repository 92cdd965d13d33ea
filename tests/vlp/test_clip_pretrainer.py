"""CLIPPretrainer: a real open_clip CLIP inside an mmengine model, checked against open_clip's
own forward and ClipLoss; zero-shot prediction against the prompt-ensemble formula."""
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from vlkd.registry import MODELS


@pytest.fixture
def build(tiny_clip_cfg):
    """Builds a tiny CLIPPretrainer (seeded) from keyword arguments."""
    def build_model(**kwargs):
        init_default_scope('vlkd')
        torch.manual_seed(0)
        return MODELS.build(dict(type='CLIPPretrainer', model_cfg=tiny_clip_cfg, **kwargs))
    return build_model


def batch(texts, labels=None):
    """Packed uint8 BGR images (as the pipeline gives them) and data samples."""
    g = torch.Generator().manual_seed(3)
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
              for _ in texts]
    samples = []
    for i, text in enumerate(texts):
        sample = BaseDataElement(metainfo=dict(text=text))
        if labels is not None:
            sample.gt_label = torch.tensor(labels[i])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_wraps_an_open_clip_clip_with_its_tokenizer(build):
    model = build()
    assert isinstance(model.clip, open_clip.CLIP)
    assert model.image_size == 32
    tokens = model.tokenize(['a red star'])
    assert tokens.shape == (1, 16)
    # the real CLIP BPE: start token, words, end token
    assert tokens[0, 0].item() == 49406 and 49407 in tokens[0].tolist()


def test_loss_equals_open_clip_forward_and_clip_loss(build):
    model = build()
    data = model.data_preprocessor(batch(['a red star', 'a blue circle', 'two shapes']), True)
    losses = model(**data, mode='loss')
    # open_clip's own path: CLIP.forward on the same pixels and tokens, then ClipLoss
    images, texts, scale = model.clip(data['inputs'], model.tokenize(
        [s.text for s in data['data_samples']]))
    expected = open_clip.ClipLoss()(images, texts, scale)
    assert losses['loss_itc'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses['logit_scale'].item() == pytest.approx(1 / 0.07, rel=1e-5)
    losses['loss_itc'].backward()
    assert model.clip.logit_scale.grad is not None


def test_preprocessor_turns_bgr_uint8_into_normalised_rgb(build):
    model = build()
    raw = batch(['x'])
    data = model.data_preprocessor(raw, False)
    bgr = raw['inputs'][0].float()
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(3, 1, 1) * 255
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(3, 1, 1) * 255
    torch.testing.assert_close(data['inputs'][0], (bgr.flip(0) - mean) / std)


def test_predict_scores_against_prompt_ensembled_class_names(build):
    classes = ['star', 'circle', 'heart']
    templates = ['a {}', 'a picture of a {}']
    model = build(zero_shot=dict(classes=classes, templates=templates)).eval()
    data = model.data_preprocessor(batch(['a', 'b'], labels=[0, 2]), False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
        image = F.normalize(model.clip.encode_image(data['inputs']), dim=-1)
        per_template = torch.stack([F.normalize(model.clip.encode_text(model.tokenize(
            [t.format(c) for t in templates])), dim=-1).mean(0) for c in classes])
        expected = image @ F.normalize(per_template, dim=-1).T
    for sample, row in zip(samples, expected):
        torch.testing.assert_close(sample.pred_score, row)
        assert sample.pred_label.item() == row.argmax().item()
    assert samples[1].gt_label.item() == 2


def test_tensor_mode_gives_normalised_embeddings(build):
    model = build()
    data = model.data_preprocessor(batch(['a star', 'a square']), False)
    images, texts = model(**data, mode='tensor')
    assert images.shape == texts.shape == (2, 32)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(2))


def test_clear_errors(build):
    with pytest.raises(ValueError, match='exactly one of model_name'):
        build(model_name='ViT-B-32')
    with pytest.raises(ValueError, match='not a built-in open_clip architecture'):
        init_default_scope('vlkd')
        MODELS.build(dict(type='CLIPPretrainer', model_name='hf-hub:org/model'))
    model = build()
    with pytest.raises(ValueError, match="mode='predict'"):
        model(**model.data_preprocessor(batch(['a']), False), mode='predict')
    with pytest.raises(ValueError, match='32x32'):
        model.encode_image(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match='zero_shot'):
        build(zero_shot=dict(names=['star']))
    assert math.isfinite(model(**model.data_preprocessor(batch(['a', 'b']), True),
                               mode='loss')['loss_itc'].item())


def test_unicl_loss_gets_the_samples_labels(build):
    """With UniCL, the two 'star' pairs are positives of each other (formula written here)."""
    model = build(loss=dict(type='ImageTextLabelContrastiveLoss'))
    data = batch(['a star', 'a picture of a star', 'a circle'])
    for sample, label in zip(data['data_samples'], [3, 3, 0]):
        sample.unicl_label = torch.tensor(label)
    data = model.data_preprocessor(data, True)
    loss = model(**data, mode='loss')['loss_itc']
    images, texts, scale = model.clip(data['inputs'], model.tokenize(
        [s.text for s in data['data_samples']]))
    logits = scale * images @ texts.T
    targets = torch.tensor([[.5, .5, 0], [.5, .5, 0], [0, 0, 1]])
    expected = (-(targets * logits.log_softmax(1)).sum(1).mean()
                - (targets * logits.T.log_softmax(1)).sum(1).mean()) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # the plain ITC loss on the same batch is different: labels were used
    itc = open_clip.ClipLoss()(images, texts, scale)
    assert abs(itc.item() - loss.item()) > 1e-3


def test_unicl_loss_without_labels_names_the_samples(build):
    model = build(loss=dict(type='ImageTextLabelContrastiveLoss'))
    data = model.data_preprocessor(batch(['a star', 'a circle']), True)
    with pytest.raises(ValueError, match=r'unicl_label in every data sample; samples \[0, 1\]'):
        model(**data, mode='loss')
