"""Region-based KD heads: the weight-transfer classifier against its formula written here
from the head's parameters, the RoI head's losses against the pseudo boxes and losses
recomputed here by loops, bad configurations, and the shipped config trained for two
iterations on tiny data."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmdet.structures import DetDataSample

from vlkd.det import RKDBBoxHead, RKDRoIHead, write_region_cache
from vlkd.registry import MODELS
from vlkd.teachers import build_teacher

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
BASE = ['circle', 'square', 'triangle']
ALL = ['circle', 'square', 'triangle', 'star']
EXTRACTOR = dict(type='SingleRoIExtractor', out_channels=8, featmap_strides=[4],
                 roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2))


def _bbox_head_cfg(teacher_cfg, **kwargs):
    return dict(type='vlkd.RKDBBoxHead', train_classes=BASE, test_classes=ALL,
                image_label_classes=ALL, vocabulary=dict(teacher=teacher_cfg),
                in_channels=8, fc_out_channels=16, **kwargs)


def _shared(head, feats):
    hidden = feats.flatten(1)
    for fc in head.shared_fcs:
        hidden = torch.relu(fc(hidden))
    return hidden


def test_classifier_projection_is_transferred_from_the_distillation_weights(tiny_teacher_cfg):
    init_default_scope('mmdet')
    cfg = _bbox_head_cfg(tiny_teacher_cfg, temperature=0.05)
    cfg.pop('type')
    head = RKDBBoxHead(**cfg)
    feats = torch.randn(5, 8, 7, 7)
    teacher = build_teacher(tiny_teacher_cfg)
    shared = _shared(head, feats)

    def leaky(v):
        return torch.where(v > 0, v, 0.1 * v)

    fc1, fc2 = head.weight_transfer[0], head.weight_transfer[2]
    w_d = head.projection.weight  # (D, F)
    w_t = (leaky(w_d @ fc1.weight.t() + fc1.bias) @ fc2.weight.t() + fc2.bias)  # (D, F)
    r1, r2 = head.residual[0], head.residual[2]
    residual = leaky(shared @ r1.weight.t() + r1.bias) @ r2.weight.t() + r2.bias
    embedding = shared @ w_t.t() + residual
    for training, names in [(True, BASE), (False, ALL)]:
        head.train(training)
        cls_score, bbox_pred = head(feats)
        classifier = torch.cat([teacher.encode_class_names(names, 'shapes'),
                                head.background_embedding[None]])
        expected = F.cosine_similarity(embedding[:, None], classifier[None], dim=-1) / 0.05
        torch.testing.assert_close(cls_score, expected, atol=1e-4, rtol=1e-4)
        assert bbox_pred.shape == (5, 4)
    # classification trains the transfer function, never the distillation projection
    head.train()
    head(feats)[0].logsumexp(1).sum().backward()
    assert head.projection.weight.grad is None
    assert head.weight_transfer[0].weight.grad.abs().sum() > 0
    assert head.residual[0].weight.grad.abs().sum() > 0


def _roi_head(teacher_cfg, cache_dir, caption_file, **kwargs):
    init_default_scope('mmdet')
    return RKDRoIHead(bbox_roi_extractor=EXTRACTOR, bbox_head=_bbox_head_cfg(teacher_cfg),
                      region_distillation=dict(cache_dir=str(cache_dir), loss_weight=0.5),
                      **kwargs)


def test_region_losses_match_a_recomputation(tiny_teacher_cfg, tmp_path):
    teacher = build_teacher(tiny_teacher_cfg)
    rng = np.random.default_rng(0)
    boxes = {1: np.array([[0, 0, 20, 20], [10, 10, 40, 30], [5, 5, 60, 60]], np.float32),
             2: np.array([[2, 2, 30, 30], [30, 30, 63, 63]], np.float32)}
    targets = {i: F.normalize(torch.tensor(rng.normal(size=(len(b), 32)), dtype=torch.float32),
                              dim=-1).half().float().numpy() for i, b in boxes.items()}
    write_region_cache(tmp_path / 'cache', [(i, boxes[i], targets[i]) for i in (1, 2)],
                       teacher.fingerprint, 'test')
    captions = dict(images=[dict(id=1, file_name='1.png'), dict(id=2, file_name='2.png')],
                    annotations=[dict(id=1, image_id=1, caption='a star and two circles'),
                                 dict(id=2, image_id=1, caption='a blue triangle'),
                                 dict(id=3, image_id=2, caption='three squares')])
    caption_file = tmp_path / 'captions.json'
    caption_file.write_text(json.dumps(captions))
    roi_head = _roi_head(tiny_teacher_cfg, tmp_path / 'cache', caption_file,
                         relation_loss_weight=2.0,
                         image_labels=dict(caption_file=str(caption_file), loss_weight=0.3))
    x = (torch.randn(2, 8, 16, 16),)
    samples = [DetDataSample(metainfo=dict(img_id=i, img_shape=(64, 64),
                                           homography_matrix=np.eye(3))) for i in (1, 2)]
    losses = roi_head.region_losses(x, samples)

    # recomputed: the student's embeddings and classifier on all cached boxes
    rois = torch.cat([torch.cat([torch.full((len(boxes[i]), 1), float(k)),
                                 torch.from_numpy(boxes[i])], 1) for k, i in enumerate((1, 2))])
    head = roi_head.bbox_head
    shared = _shared(head, roi_head.bbox_roi_extractor(x, rois))
    student = F.normalize(head.projection(shared), dim=-1).detach().double().numpy()
    teacher_np = np.concatenate([targets[1], targets[2]]).astype(np.float64)
    l1 = np.mean([np.abs(s - t).sum() for s, t in zip(student, teacher_np)])
    np.testing.assert_allclose(losses['loss_region_distill'].item(), 0.5 * l1, rtol=1e-5)
    gram_s, gram_t = student @ student.T, teacher_np @ teacher_np.T
    gram_s /= np.linalg.norm(gram_s, axis=1, keepdims=True)
    gram_t /= np.linalg.norm(gram_t, axis=1, keepdims=True)
    irm = ((gram_s - gram_t) ** 2).sum() / len(student)
    np.testing.assert_allclose(losses['loss_relation_distill'].item(), 2.0 * irm, rtol=1e-4)

    # pseudo boxes: image 1 names circle, triangle, star; image 2 names square
    text = head.image_label_embeddings.double().numpy()
    image_losses = []
    for offset, img_id, labels in [(0, 1, [0, 2, 3]), (3, 2, [1])]:
        per_label = []
        for label in labels:
            scores = [float(t @ text[label]) for t in targets[img_id].astype(np.float64)]
            row = offset + int(np.argmax(scores))
            logits = head.classify(shared[row:row + 1], head.image_label_embeddings)[0]
            logits = logits.detach().double().numpy()
            per_label.append(np.log(np.exp(logits).sum()) - logits[label])
        image_losses.append(np.mean(per_label))
    np.testing.assert_allclose(losses['loss_image_label'].item(), 0.3 * np.mean(image_losses),
                               rtol=1e-4)
    sum(losses.values()).backward()
    assert head.projection.weight.grad.abs().sum() > 0  # by distillation
    assert head.weight_transfer[0].weight.grad.abs().sum() > 0  # by the pseudo labels


def test_bad_configurations_are_refused(tiny_teacher_cfg, tmp_path):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='needs region_distillation'):
        RKDRoIHead(bbox_roi_extractor=EXTRACTOR, bbox_head=_bbox_head_cfg(tiny_teacher_cfg))
    with pytest.raises(KeyError, match='caption_file'):
        _roi_head(tiny_teacher_cfg, tmp_path, None, image_labels=dict(captions='x.json'))
    vild_head = dict(type='vlkd.ViLDBBoxHead', train_classes=BASE, test_classes=ALL,
                     vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8)
    with pytest.raises(TypeError, match='RKDBBoxHead'):
        RKDRoIHead(bbox_roi_extractor=EXTRACTOR, bbox_head=vild_head,
                   region_distillation=dict(cache_dir=str(tmp_path)),
                   image_labels=dict(caption_file='x.json'))
    with pytest.raises(ValueError, match='relation_loss_weight'):
        _roi_head(tiny_teacher_cfg, tmp_path, None, relation_loss_weight=-1.0)
    with pytest.raises(ValueError, match='image_label_classes has an empty name'):
        MODELS.build({**_bbox_head_cfg(tiny_teacher_cfg), 'image_label_classes': ['a', '']})


@pytest.mark.slow
def test_config_trains_and_tests(relocate_config, tmp_path, vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    cfg = relocate_config(Config.fromfile(CONFIGS / 'rkd' / 'rkd_clip_trunk_shapes.py'))
    cfg.work_dir = str(tmp_path / 'rkd')
    cfg.train_cfg.max_iters = cfg.default_hooks.checkpoint.interval = 2
    cfg.train_dataloader.batch_size = 2
    cfg.param_scheduler = []
    cache_dir = str(tmp_path / 'cache')
    cfg.model.roi_head.region_distillation.cache_dir = cache_dir
    cfg.custom_hooks[0].update(cache_dir=cache_dir, num_proposals=4,
                               proposal_detector=dict(checkpoint=str(checkpoint)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    logged = runner.message_hub.log_scalars
    for key in ('loss_region_distill', 'loss_relation_distill', 'loss_image_label', 'loss_cls'):
        assert np.isfinite(logged[f'train/{key}'].current()), key
    assert logged['train/loss_image_label'].current() > 0
    metrics = runner.test()
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0
