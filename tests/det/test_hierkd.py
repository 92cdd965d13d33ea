"""HierKD: the global caption distillation against the attention and InfoNCE formulas written
out with numpy loops, the caption pipeline step, bad inputs, and the shapes config trained
for 2 iterations with mmengine's Runner."""
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.runner import Runner

from vlkd.det import (AttachCaption, CaptionEncoder, GlobalCaptionDistillation,
                      flatten_feature_levels, flip_caption)
from vlkd.teachers import build_teacher

CONFIG = Path(__file__).resolve().parents[2] / 'configs' / 'hierkd' / 'hierkd_clip_trunk_shapes.py'


# -- the global loss, by hand ----------------------------------------------------------------
def _valid_cells(level, img_h, img_w, batch_h, batch_w):
    """Features (C,) of the cells of one image's map (C, h, w) whose top-left pixel lies in
    the image content: row r starts at pixel r * batch_h / h."""
    c, h, w = level.shape
    return [level[:, r, q] for r in range(h) for q in range(w)
            if r * batch_h / h < img_h and q * batch_w / w < img_w]


def _attention_pool(cells, query, attn):
    """Multi-head attention of one query (D,) over cells [(C,)], from the layer's weights."""
    d, heads = attn.embed_dim, attn.num_heads
    dh = d // heads
    w = lambda t: t.detach().numpy()  # noqa: E731
    bq, bk, bv = np.split(w(attn.in_proj_bias), 3)
    q = w(attn.q_proj_weight) @ query + bq
    keys = [w(attn.k_proj_weight) @ x + bk for x in cells]
    values = [w(attn.v_proj_weight) @ x + bv for x in cells]
    heads_out = []
    for h in range(heads):
        part = slice(h * dh, (h + 1) * dh)
        scores = np.array([q[part] @ k[part] / math.sqrt(dh) for k in keys])
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        heads_out.append(sum(a * v[part] for a, v in zip(weights, values)))
    return w(attn.out_proj.weight) @ np.concatenate(heads_out) + w(attn.out_proj.bias)


def _info_nce(images, texts, scale):
    """Symmetric InfoNCE: mean over rows of -log softmax of the matching pair, both ways."""
    u = [x / np.linalg.norm(x) for x in images]
    v = [t / np.linalg.norm(t) for t in texts]
    n = len(u)
    total = 0.0
    for a, b in ((u, v), (v, u)):
        for i in range(n):
            logits = np.array([scale * a[i] @ b[j] for j in range(n)])
            total += -(logits[i] - np.log(np.exp(logits).sum()))
    return total / (2 * n)


def _random_batch(seed=0, batch=3, channels=6, dim=8):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(batch, channels, 4, 4, generator=g, dtype=torch.float64),
             torch.randn(batch, channels, 2, 2, generator=g, dtype=torch.float64)]
    text = torch.nn.functional.normalize(
        torch.randn(batch, dim, generator=g, dtype=torch.float64), dim=-1)
    return feats, text


def _distillation(**kwargs):
    torch.manual_seed(0)
    # the teacher is only loaded when captions are encoded; these tests pass embeddings
    module = GlobalCaptionDistillation(in_channels=6, embed_dim=8, teacher=dict(type='unused'),
                                       num_heads=2, **kwargs).double()
    with torch.no_grad():  # non-zero biases, so that a wrong bias split would show
        module.pooling.attention.in_proj_bias.normal_()
        module.pooling.attention.out_proj.bias.normal_()
    return module


def test_global_loss_matches_attention_and_info_nce_by_hand():
    module = _distillation(init_temperature=0.1, loss_weight=0.5)
    feats, text = _random_batch()
    batch_shape = (32, 32)
    image_shapes = [(32, 32), (20, 32), (9, 17)]  # the last two with zero padding
    loss = module(feats, text, image_shapes, batch_shape)

    pooled = []
    for i, (img_h, img_w) in enumerate(image_shapes):
        cells = [x for level in feats
                 for x in _valid_cells(level[i].numpy(), img_h, img_w, *batch_shape)]
        pooled.append(_attention_pool(cells, text[i].numpy(), module.pooling.attention))
    scale = math.exp(module.log_scale.item())  # 1 / 0.1, as stored (float32 initial value)
    assert scale == pytest.approx(1 / 0.1, rel=1e-6)
    expected = 0.5 * _info_nce(pooled, list(text.numpy()), scale)
    assert loss.item() == pytest.approx(expected, rel=1e-9)

    loss.backward()  # the loss trains the pooling and the logit scale
    assert module.pooling.attention.k_proj_weight.grad.abs().sum() > 0
    assert module.log_scale.grad is not None


def test_padding_cells_do_not_change_the_loss():
    module = _distillation()
    feats, text = _random_batch(seed=1)
    shapes = [(32, 32), (16, 32), (32, 8)]
    loss = module(feats, text, shapes, (32, 32))
    tokens, padding = flatten_feature_levels(feats, shapes, (32, 32))
    assert tokens.shape == (3, 16 + 4, 6)
    # image 1: top 2 of 4 rows / top 1 of 2 rows valid; image 2: 1 of 4 / 1 of 2 columns
    assert padding.sum(dim=1).tolist() == [0, 8 + 2, 12 + 2]
    changed = [level.clone() for level in feats]
    changed[0][1, :, 2:] += 100.0  # padding rows of image 1
    changed[1][2, :, :, 1:] -= 50.0  # padding columns of image 2
    assert module(changed, text, shapes, (32, 32)).item() == pytest.approx(loss.item(), rel=1e-12)
    changed[0][1, :, :2] += 1.0  # its content does count
    assert module(changed, text, shapes, (32, 32)).item() != pytest.approx(loss.item(), rel=1e-6)


def test_levels_select_feature_maps():
    feats, text = _random_batch(seed=2)
    shapes = [(32, 32)] * 3
    only_coarse = _distillation(levels=[1])
    expected = _distillation()(feats[1:], text, shapes, (32, 32))
    assert only_coarse(feats, text, shapes, (32, 32)).item() == pytest.approx(expected.item())
    with pytest.raises(IndexError, match=r'levels \[5\] do not exist'):
        _distillation(levels=[5])(feats, text, shapes, (32, 32))


def test_bad_inputs_are_named():
    module = _distillation()
    feats, text = _random_batch()
    with pytest.raises(ValueError, match=r'caption embeddings have shape \(3, 7\)'):
        module(feats, text[:, :7], [(32, 32)] * 3, (32, 32))
    with pytest.raises(ValueError, match='2 image shapes for a batch of 3'):
        module(feats, text, [(32, 32)] * 2, (32, 32))
    with pytest.raises(ValueError, match='not divisible'):
        GlobalCaptionDistillation(6, 8, teacher=dict(type='unused'), num_heads=3)
    with pytest.raises(ValueError, match='init_temperature must be positive'):
        GlobalCaptionDistillation(6, 8, teacher=dict(type='unused'), init_temperature=0)


def test_caption_encoder_is_the_teachers_text_tower(tiny_teacher_cfg):
    encoder = CaptionEncoder(tiny_teacher_cfg)
    captions = ['a red star', 'two shapes: a blue circle below a green heart']
    got = encoder.encode(captions, torch.device('cpu'))
    expected = build_teacher(tiny_teacher_cfg).encode_text(captions)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match='caption 1 of the batch: the caption is empty'):
        encoder.encode(['a star', '  '], torch.device('cpu'))


# -- the caption pipeline step ---------------------------------------------------------------
def test_flip_caption_swaps_whole_words():
    caption = 'a star to the left of a circle, a heart right above a leftover square'
    assert flip_caption(caption, 'horizontal') == \
        'a star to the right of a circle, a heart left above a leftover square'
    assert flip_caption(caption, 'vertical') == \
        'a star to the left of a circle, a heart right below a leftover square'
    assert flip_caption(caption, 'diagonal') == \
        'a star to the right of a circle, a heart left below a leftover square'
    with pytest.raises(ValueError, match="Unknown flip direction 'sideways'"):
        flip_caption(caption, 'sideways')


def test_attach_caption_draws_a_caption_of_the_image(shapes_root):
    ann_file = str(shapes_root / 'annotations' / 'captions_train.json')
    data = json.loads(Path(ann_file).read_text())
    img_id = data['images'][0]['id']
    own = {a['caption'] for a in data['annotations'] if a['image_id'] == img_id}
    step = AttachCaption(ann_file)
    random.seed(0)
    drawn = {step.transform(dict(img_id=img_id))['caption'] for _ in range(40)}
    assert drawn == own  # every caption of the image, and only them
    flipped = step.transform(dict(img_id=img_id, flip=True, flip_direction='horizontal'))
    assert flipped['caption'] in {flip_caption(c, 'horizontal') for c in own}
    kept = AttachCaption(ann_file, follow_flip=False).transform(
        dict(img_id=img_id, flip=True, flip_direction='horizontal'))
    assert kept['caption'] in own

    with pytest.raises(KeyError, match='Image 9999 .* has no caption'):
        step.transform(dict(img_id=9999))
    with pytest.raises(KeyError, match=r'needs results\["img_id"\]'):
        step.transform(dict(img_path='x.png'))


def test_attach_caption_refuses_an_empty_caption(tmp_path):
    ann_file = tmp_path / 'captions.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=1, file_name='1.png')],
        annotations=[dict(id=7, image_id=1, caption=' ')])))
    with pytest.raises(ValueError, match='annotation 7 .* the caption is empty'):
        AttachCaption(str(ann_file))


# -- the detector ----------------------------------------------------------------------------
def _short(cfg, iters=2):
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = iters
    cfg.param_scheduler = []
    return cfg


@pytest.mark.slow
def test_hierkd_config_trains_and_tests(relocate_config, tmp_path, vild_text_checkpoint):
    cfg = _short(relocate_config(Config.fromfile(CONFIG)))
    cache_dir = str(tmp_path / 'region_cache')
    cfg.model.roi_head.region_distillation.cache_dir = cache_dir
    cfg.custom_hooks[0].update(cache_dir=cache_dir, num_proposals=4,
                               proposal_detector=dict(checkpoint=str(vild_text_checkpoint[0])))
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.log_scalars
    for name in ('loss_global_distill', 'loss_region_distill', 'loss_cls'):
        values = losses[f'train/{name}'].data[0]
        assert len(values) == 2 and np.isfinite(values).all() and (values > 0).all()
    metrics = runner.test()  # no captions at test time: the global branch only trains
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0

    # a training sample without a caption is an error that says how to add one
    roi_head = runner.model.roi_head
    sample = DetDataSample(metainfo=dict(img_path='a.png', img_shape=(64, 64),
                                         batch_input_shape=(64, 64)))
    feats = tuple(torch.zeros(1, 64, 64 // s, 64 // s) for s in (4, 8, 16, 32, 64))
    with pytest.raises(KeyError, match="a.png has no caption: HierKD needs .*AttachCaption"):
        roi_head.global_distillation_loss(feats, [sample])
