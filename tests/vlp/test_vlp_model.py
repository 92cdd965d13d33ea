"""VLPModel: each recipe family's losses recomputed by hand from the towers' outputs and the
formulas, the forward passes a step runs (counted), zero-shot by pair scores against a
per-pair loop, and the errors a user meets."""
import copy
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from vlkd.registry import MODELS
from vlkd.vlp.objectives.mlm import IGNORE_INDEX

WIDTH = 32
VIT = dict(type='ViTPatchEncoder', mask_token=True,
           vision_cfg=dict(image_size=32, patch_size=8, width=WIDTH, layers=1, head_width=16))
BERT = dict(type='BertTextEncoder', max_length=16,
            bert_cfg=dict(hidden_size=WIDTH, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=2 * WIDTH, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0))
SINGLE = dict(type='SingleStreamFusion', width=WIDTH, depth=1, num_heads=2)
CROSS = dict(type='CrossAttentionFusion', width=WIDTH, depth=1, num_heads=2)
TEXTS = ['a red star', 'a blue circle and a green square', 'a picture of a star', 'a heart']
LABELS = [3, 12, 3, 8]  # the two star crops match each other


def build(**cfg):
    init_default_scope('vlkd')
    torch.manual_seed(0)
    return MODELS.build(dict(type='VLPModel', **cfg))


def batch(model, texts=TEXTS, labels=LABELS, training=True):
    """A preprocessed batch of random 32 px images with captions (and labels)."""
    g = torch.Generator().manual_seed(1)
    samples = []
    for i, text in enumerate(texts):
        sample = BaseDataElement(metainfo=dict(text=text))
        if labels is not None:
            sample.unicl_label = torch.tensor(labels[i])
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g) for _ in texts]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training)


def count_passes(model):
    """Counter of the backbone's encode_image / encode_text / fuse calls (online and
    momentum copies), by wrapping the methods."""
    counts = Counter()
    backbones = [('online', model.backbone)]
    if model.momentum is not None:
        backbones.append(('momentum', model.momentum.module.backbone))
    for tag, backbone in backbones:
        for name in ('encode_image', 'encode_text', 'fuse'):
            original = getattr(backbone, name)

            def counted(*args, _original=original, _key=(tag, name), **kwargs):
                counts[_key] += 1
                return _original(*args, **kwargs)
            setattr(backbone, name, counted)
    return counts


def infonce(image, text, scale):
    """Symmetric InfoNCE written out in numpy."""
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = scale * image @ text.T

    def ce(rows):
        rows = rows - rows.max(axis=1, keepdims=True)
        log_probs = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        return -np.mean(np.diag(log_probs))
    return (ce(logits) + ce(logits.T)) / 2


def albef(**overrides):
    cfg = dict(image_encoder=VIT, text_encoder=BERT, fusion=CROSS, objectives=dict(
        itc=dict(type='MomentumContrastTask', embed_dim=16, queue_size=8),
        itm=dict(type='ImageTextMatchingTask', hard_negatives=True),
        mlm=dict(type='MaskedLanguageTask', distill=True, weight=0.5)),
        momentum=dict(momentum=0.9, alpha=0.4, ramp_iters=4))
    cfg.update(overrides)
    return build(**cfg)


def test_albef_runs_each_pass_once_and_its_itc_is_the_formula():
    model = albef()
    data = batch(model)
    counts = count_passes(model)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_itc', 'itc_logit_scale', 'loss_itm', 'itm_accuracy',
                           'loss_mlm'}
    # unimodal towers once (ITC, ITM negatives and fusion share them); the masked caption
    # once; two fusions (3N matching pairs, masked caption); the momentum model: towers
    # and the masked caption through its fusion for the distilled MLM targets
    assert counts == Counter({('online', 'encode_image'): 1, ('online', 'encode_text'): 2,
                              ('online', 'fuse'): 2, ('momentum', 'encode_image'): 1,
                              ('momentum', 'encode_text'): 2, ('momentum', 'fuse'): 1})
    # step 0: alpha ramps from 0 and the queues are empty, so the momentum ITC is the plain
    # InfoNCE of the projected [CLS] features
    with torch.no_grad():
        image = model.backbone.image_encoder(data['inputs']).cls
        text_in = model.backbone.tokenize(TEXTS)
        text = model.backbone.text_encoder(**text_in).cls
        itc = model.tasks.itc
        expected = infonce(itc.image_projection(image).numpy(),
                           itc.text_projection(text).numpy(), itc.logit_scale.exp().item())
    assert losses['loss_itc'].item() == pytest.approx(expected, rel=1e-5)
    assert model.steps.item() == 1
    assert len(model.tasks.itc.image_queue.snapshot()) == len(TEXTS)


def test_albef_itm_pairs_and_loss():
    model = albef()
    data = batch(model)
    step = model.make_step(data['inputs'], data['data_samples'])
    pairs = step.matching(hard_negatives=True)
    n = len(TEXTS)
    assert pairs.is_match.tolist() == [1] * n + [0] * 2 * n
    positive = {(i, j) for i in range(n) for j in range(n)
                if i == j or LABELS[i] == LABELS[j]}
    for i, j, match in zip(pairs.image_index.tolist(), pairs.text_index.tolist(),
                           pairs.is_match.tolist()):
        assert ((i, j) in positive) == bool(match)  # a negative is never a true match
    # the loss: BCE of the head on [CLS] of each pair fused on its own
    head = model.tasks.itm.loss.head
    logits = []
    tokens = model.backbone.tokenize(TEXTS)
    with torch.no_grad():
        image_out = model.backbone.image_encoder(data['inputs'])
        text_out = model.backbone.text_encoder(**tokens)
        for i, j in zip(pairs.image_index.tolist(), pairs.text_index.tolist()):
            fused = model.backbone.fusion(text_out.tokens[j:j + 1], text_out.mask[j:j + 1],
                                          image_out.tokens[i:i + 1])
            logits.append(head(fused.cls).item())
    logits, targets = np.array(logits), pairs.is_match.numpy()
    bce = np.mean(np.logaddexp(0, logits) - targets * logits)
    out = model.tasks.itm(step)
    assert out['loss'].item() == pytest.approx(bce, rel=1e-4)
    assert out['accuracy'].item() == pytest.approx(np.mean((logits > 0) == targets))


def test_distilled_mlm_mixes_the_momentum_model_targets():
    model = albef(momentum=dict(momentum=0.9, alpha=0.4, ramp_iters=0))
    data = batch(model)
    step = model.make_step(data['inputs'], data['data_samples'])
    loss = model.tasks.mlm(step)['loss']
    text, labels = step.masked_text(0.15)
    assert (labels != IGNORE_INDEX).any()
    # at step 0 the momentum copy equals the model: soft targets = the model's own softmax
    with torch.no_grad():
        hidden = model.backbone.fuse(step.image, text).text_tokens
        logits = model.tasks.mlm.loss.head(hidden[labels != IGNORE_INDEX])
        log_probs = logits.log_softmax(-1).numpy()
        targets = labels[labels != IGNORE_INDEX].numpy()
    hard = -np.mean(log_probs[np.arange(len(targets)), targets])
    soft = -np.mean((np.exp(log_probs) * log_probs).sum(axis=1))
    assert loss.item() == pytest.approx((1 - 0.4) * hard + 0.4 * soft, rel=1e-4)


def test_momentum_model_follows_the_ema_and_alpha_ramps():
    model = albef()
    data = batch(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(2):
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if k.startswith('loss')).backward()
        optimizer.step()
        optimizer.zero_grad()
    before = {k: v.clone() for k, v in model.momentum.module.named_parameters()}
    online = dict(model.named_parameters())
    model(**data, mode='loss')  # updates the copy first: m * copy + (1 - m) * online
    for name, value in model.momentum.module.named_parameters():
        torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * online[name].detach())
    assert model.make_step(data['inputs'], data['data_samples']).alpha == pytest.approx(
        0.4 * 3 / 4)
    model.eval()
    model(**data, mode='loss')
    assert model.steps.item() == 3  # evaluation does not advance the ramp


def test_single_stream_itm_and_wra_share_the_matching_pairs():
    model = build(image_encoder=dict(VIT, vision_cfg=dict(VIT['vision_cfg'], layers=0)),
                  text_encoder=dict(BERT, num_layers=0), fusion=SINGLE, objectives=dict(
                      itm=dict(type='ImageTextMatchingTask', hard_negatives=False),
                      mlm=dict(type='MaskedLanguageTask'),
                      wra=dict(type='WordRegionAlignmentTask', weight=0.1)))
    data = batch(model)
    counts = count_passes(model)
    losses = model(**data, mode='loss')
    assert counts[('online', 'fuse')] == 2  # the matching pairs once, the masked caption
    assert counts[('online', 'encode_text')] == 2
    step = model.make_step(data['inputs'], data['data_samples'])
    pairs = step.matching(False)
    # WRA by hand: words without [CLS] / [SEP] / padding, the 16 patch tokens, signed by match
    tokenizer = model.backbone.tokenizer
    words = pairs.fused.text_mask & ~torch.isin(
        pairs.text.input_ids, torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id]))
    distances = model.tasks.wra.loss.distance(pairs.fused.text_tokens,
                                              pairs.fused.image_tokens[:, 1:], words,
                                              torch.ones(len(words), 16, dtype=torch.bool))
    sign = pairs.is_match.float() * 2 - 1
    expected = 0.1 * (sign * distances).mean()
    torch.testing.assert_close(model.tasks.wra(step)['loss'] * 0.1, expected)
    assert torch.isfinite(losses['loss_wra'])


def test_prefix_lm_mask_hides_the_suffix_from_the_prefix():
    model = build(image_encoder=VIT, text_encoder=dict(BERT, num_layers=0),
                  fusion=dict(SINGLE, image_first=True),
                  objectives=dict(plm=dict(type='PrefixLanguageTask')))
    data = batch(model)
    task, backbone = model.tasks.plm, model.backbone
    step = model.make_step(data['inputs'], data['data_samples'])
    prefix = torch.tensor([2, 1, 3, 0])
    hidden = task._prefix_hidden(backbone, step.image, step.text, prefix)
    # change every suffix token: prefix outputs stay, suffix outputs change
    ids = step.text.input_ids.clone()
    position = torch.arange(ids.shape[1])
    suffix = (position[None] >= prefix[:, None]) & step.text.attention_mask
    ids[suffix] = 2000
    other = task._prefix_hidden(backbone, step.image, step.text.with_ids(ids), prefix)
    prefix_positions = position[None] < prefix[:, None]
    torch.testing.assert_close(hidden[prefix_positions], other[prefix_positions])
    assert not torch.allclose(hidden[suffix], other[suffix])
    # the loss: next-token CE over the real suffix tokens, written out
    with torch.no_grad():
        log_probs = task.loss.head(hidden).log_softmax(-1)
        terms = [-log_probs[b, t, ids_bt].item()
                 for b in range(len(ids)) for t in range(ids.shape[1] - 1)
                 for ids_bt in [step.text.input_ids[b, t + 1].item()]
                 if step.text.attention_mask[b, t + 1] and t + 1 >= prefix[b]]
        loss = task.loss(hidden, step.text.input_ids, prefix, step.text.attention_mask)
    assert loss.item() == pytest.approx(np.mean(terms), rel=1e-5)


def test_captioning_decoder_variant_trains():
    model = build(image_encoder=VIT, text_encoder=dict(BERT, num_layers=0), objectives=dict(
        cap=dict(type='PrefixLanguageTask', decoder=dict(
            type='TransformerDecoder', width=WIDTH, depth=1, num_heads=2, max_length=16))))
    data = batch(model)
    loss = model(**data, mode='loss')['loss_cap']
    loss.backward()
    assert model.tasks.cap.decoder.token_embedding.weight.grad is not None
    assert model.backbone.image_encoder.vit.conv1.weight.grad is not None


def test_zero_shot_by_itm_scores_equals_a_loop_over_pairs():
    templates = ['a {}', 'a picture of a {}']
    classes = ['star', 'circle', 'heart']
    model = build(image_encoder=VIT, text_encoder=BERT, fusion=SINGLE,
                  objectives=dict(itm=dict(type='ImageTextMatchingTask', hard_negatives=False)),
                  zero_shot=dict(classes=classes, templates=templates)).eval()
    data = batch(model, training=False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
        expected = torch.zeros(len(TEXTS), len(classes))
        backbone, head = model.backbone, model.tasks.itm.loss.head
        for i in range(len(TEXTS)):
            image = backbone.image_encoder(data['inputs'][i:i + 1])
            for c, name in enumerate(classes):
                for template in templates:
                    text = backbone.text_encoder.encode([template.format(name)])
                    fused = backbone.fusion(text.tokens, text.mask, image.tokens, image.mask)
                    expected[i, c] += head(fused.cls)[0, 0] / len(templates)
                own = backbone.text_encoder.encode([TEXTS[i]])
                fused = backbone.fusion(own.tokens, own.mask, image.tokens, image.mask)
            torch.testing.assert_close(samples[i].itm_logits, head(fused.cls)[0])
            assert samples[i].itm_labels.tolist() == [1]
    for sample, row in zip(samples, expected):
        torch.testing.assert_close(sample.pred_score, row, rtol=1e-4, atol=1e-5)
        assert sample.pred_label.item() == row.argmax().item()
        assert 'image_embedding' not in sample  # no joint space


def test_joint_space_embeddings_and_zero_shot_by_class_embeddings():
    model = build(image_encoder=VIT, text_encoder=BERT,
                  objectives=dict(itc=dict(type='ImageTextContrastTask', embed_dim=16)),
                  zero_shot=dict(classes=['star', 'heart'], templates=['a {}'])).eval()
    data = batch(model, training=False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
        itc, backbone = model.tasks.itc, model.backbone
        image = F.normalize(itc.image_projection(backbone.image_encoder(data['inputs']).cls), dim=-1)
        classes = F.normalize(itc.text_projection(
            backbone.text_encoder.encode(['a star', 'a heart']).cls), dim=-1)
        own = F.normalize(itc.text_projection(backbone.text_encoder.encode(TEXTS).cls), dim=-1)
    for i, sample in enumerate(samples):
        torch.testing.assert_close(sample.image_embedding, image[i])
        torch.testing.assert_close(sample.text_embedding, own[i])
        torch.testing.assert_close(sample.pred_score, image[i] @ classes.T)


def test_unicl_positives_are_the_pairs_sharing_a_label():
    model = build(image_encoder=VIT, text_encoder=BERT, objectives=dict(
        itc=dict(type='ImageTextLabelContrastTask', embed_dim=16)))
    data = batch(model)
    loss = model(**data, mode='loss')['loss_itc']
    step = model.make_step(data['inputs'], data['data_samples'])
    image, text = (f.detach().numpy() for f in step.joint_features())
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = model.tasks.itc.logit_scale.exp().item() * image @ text.T
    labels = np.array(LABELS)
    targets = (labels[:, None] == labels[None]).astype(float)
    targets /= targets.sum(axis=1, keepdims=True)

    def ce(rows):
        log_probs = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        return -np.mean((targets * log_probs).sum(axis=1))
    assert loss.item() == pytest.approx((ce(logits) + ce(logits.T)) / 2, rel=1e-5)


def test_flava_masks_once_per_ratio_and_regresses_patches():
    model = build(image_encoder=VIT, text_encoder=BERT, fusion=SINGLE, objectives=dict(
        itc=dict(type='ImageTextContrastTask', embed_dim=16),
        mim=dict(type='MaskedImageTask', mask_ratio=0.5),
        mlm=dict(type='MaskedLanguageTask', with_image=False),
        mmm=dict(type='MaskedMultimodalTask', image_mask_ratio=0.5)))
    data = batch(model)
    counts = count_passes(model)
    losses = model(**data, mode='loss')
    assert {'loss_itc', 'loss_mim', 'loss_mlm', 'loss_mmm_text', 'loss_mmm_image'} <= set(losses)
    # images: clean (ITC) and masked (MIM and MMM share one masking); texts: clean and masked
    assert counts[('online', 'encode_image')] == 2
    assert counts[('online', 'encode_text')] == 2
    step = model.make_step(data['inputs'], data['data_samples'])
    image, mask = step.masked_units(0.5)
    assert mask.sum(dim=1).tolist() == [8] * len(TEXTS)
    # MIM by hand: L1 of the linear head on the masked patch outputs to normalised pixels
    head = model.tasks.mim.loss.head
    pixels = data['inputs'].reshape(4, 3, 4, 8, 4, 8).permute(0, 2, 4, 3, 5, 1).reshape(4, 16, -1)
    pixels = (pixels - pixels.mean(-1, keepdim=True)) / (
        pixels.var(-1, unbiased=False, keepdim=True) + 1e-6).sqrt()
    prediction = head(image.encoded.tokens[:, 1:][mask])
    expected = (prediction - pixels[mask]).abs().mean()
    torch.testing.assert_close(model.tasks.mim(step)['loss'], expected)


def test_fdt_space_is_a_mixture_of_the_shared_tokens():
    model = build(image_encoder=VIT, text_encoder=BERT, objectives=dict(
        fdt=dict(type='FDTContrastTask', num_tokens=12, token_dim=16)))
    data = batch(model)
    losses = model(**data, mode='loss')
    fdt = model.tasks.fdt.fdt
    with torch.no_grad():
        embeddings = model.encode_image(data['inputs'])
        # the representation is the token mixture of the sparsemax weights, normalised
        weights = fdt.token_weights(model.backbone.image_encoder(data['inputs']).tokens,
                                    fdt.image_proj)
        expected = F.normalize(weights @ fdt.tokens, dim=-1)
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(TEXTS)))
    assert (weights >= 0).all()
    torch.testing.assert_close(embeddings, expected)
    # 12 tokens span a 12-d subspace of the 16-d space: every embedding lies in it
    solution = torch.linalg.lstsq(fdt.tokens.T.detach(), embeddings.T).solution
    torch.testing.assert_close(fdt.tokens.T.detach() @ solution, embeddings.T, atol=1e-4,
                               rtol=1e-4)
    assert torch.isfinite(losses['loss_fdt'])


def test_vlmo_stages_select_objectives():
    model = build(backbone=dict(type='MoMEBackbone', transformer=dict(
        type='MoMETransformer', image_size=32, patch_size=8, width=WIDTH, depth=2, num_heads=2,
        num_vl_layers=1, max_text_length=16, mask_token=True)), objectives=dict(
        mim=dict(type='MaskedImageTask', stages=['image']),
        mlm_text=dict(type='MaskedLanguageTask', with_image=False, stages=['text']),
        itc=dict(type='ImageTextContrastTask', embed_dim=16, stages=['image_text']),
        itm=dict(type='ImageTextMatchingTask', stages=['image_text'])), stage='image')
    data = batch(model)
    counts = count_passes(model)
    assert set(model(**data, mode='loss')) == {'loss_mim'}
    assert counts == Counter({('online', 'encode_image'): 1})  # text never encoded
    model.set_pretraining_stage('text')
    assert set(model(**data, mode='loss')) == {'loss_mlm_text'}
    model.set_pretraining_stage('image_text')
    assert set(model(**data, mode='loss')) == {'loss_itc', 'itc_logit_scale', 'loss_itm',
                                               'itm_accuracy'}
    with pytest.raises(ValueError, match="No objective runs in stage 'video'"):
        model.set_pretraining_stage('video')


def test_clear_errors():
    with pytest.raises(ValueError, match='objectives is empty'):
        build(image_encoder=VIT, text_encoder=BERT, objectives={})
    with pytest.raises(ValueError, match='distil from the momentum model'):
        build(image_encoder=VIT, text_encoder=BERT, fusion=CROSS,
              objectives=dict(mlm=dict(type='MaskedLanguageTask', distill=True)))
    with pytest.raises(ValueError, match='needs a fusion module'):
        build(image_encoder=VIT, text_encoder=BERT,
              objectives=dict(mlm=dict(type='MaskedLanguageTask')))
    with pytest.raises(ValueError, match='have not seen later tokens'):
        build(image_encoder=VIT, text_encoder=BERT, fusion=dict(SINGLE, image_first=True),
              objectives=dict(plm=dict(type='PrefixLanguageTask')))
    with pytest.raises(ValueError, match='could each serve as joint_space'):
        build(image_encoder=VIT, text_encoder=BERT, objectives=dict(
            a=dict(type='ImageTextContrastTask', embed_dim=8),
            b=dict(type='ImageTextContrastTask', embed_dim=8)))
    clip_text = dict(type='CLIPTextEncoder', embed_dim=16, text_cfg=dict(
        context_length=16, vocab_size=49408, width=WIDTH, heads=2, layers=1))
    model = build(image_encoder=VIT, text_encoder=clip_text, fusion=SINGLE,
                  objectives=dict(mlm=dict(type='MaskedLanguageTask')))
    with pytest.raises(ValueError, match='needs a tokenizer with a \\[MASK\\] token'):
        model(**batch(model), mode='loss')
    model = build(image_encoder=VIT, text_encoder=BERT, fusion=SINGLE,
                  objectives=dict(itm=dict(type='ImageTextMatchingTask', hard_negatives=False)))
    with pytest.raises(ValueError, match='no joint image-text embedding space'):
        model.encode_text(['a star'])
    with pytest.raises(ValueError, match='Sample 1 of the batch .* has no caption'):
        model(**batch(model, texts=['a star', ' ']), mode='loss')
    one = batch(model)
    one['data_samples'] = one['data_samples'][:3]
    with pytest.raises(ValueError, match='4 visual inputs but 3 data samples'):
        model(**one, mode='loss')


def test_momentum_copy_is_independent_of_the_model():
    model = albef()
    copy_params = dict(model.momentum.module.named_parameters())
    for name, param in model._parts().named_parameters():
        assert param is not copy_params[name] and not copy_params[name].requires_grad
    clone = copy.deepcopy(model)  # the whole model (e.g. a checkpoint) keeps both
    assert len(clone.state_dict()) == len(model.state_dict())
