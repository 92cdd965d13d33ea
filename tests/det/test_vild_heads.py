"""ViLD heads: the text-embedding classifier and the region distillation loss, each checked
against the formula computed here from the head's own parameters."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmdet.structures import DetDataSample

from vlkd.det import ViLDBBoxHead, ViLDRoIHead, write_region_cache
from vlkd.teachers import build_teacher

BASE = ['circle', 'square', 'triangle']
ALL = ['circle', 'square', 'triangle', 'star']


def _head(teacher_cfg, **kwargs):
    init_default_scope('mmdet')
    return ViLDBBoxHead(train_classes=BASE, test_classes=ALL,
                        vocabulary=dict(teacher=teacher_cfg, templates='shapes'),
                        in_channels=8, roi_feat_size=7, fc_out_channels=16, **kwargs)


def test_logits_are_scaled_cosines_to_text_and_background(tiny_teacher_cfg):
    head = _head(tiny_teacher_cfg, temperature=0.05)
    feats = torch.randn(5, 8, 7, 7)
    teacher = build_teacher(tiny_teacher_cfg)
    for training, names in [(True, BASE), (False, ALL)]:
        head.train(training)
        cls_score, bbox_pred = head(feats)
        assert head.num_classes == len(names)
        assert cls_score.shape == (5, len(names) + 1) and bbox_pred.shape == (5, 4)
        hidden = feats.flatten(1)
        for fc in head.shared_fcs:
            hidden = torch.relu(fc(hidden))
        region = head.projection(hidden)
        text = teacher.encode_class_names(names, 'shapes')
        classifier = torch.cat([text, head.background_embedding[None]])
        expected = F.cosine_similarity(region[:, None], classifier[None], dim=-1) / 0.05
        torch.testing.assert_close(cls_score, expected, atol=1e-4, rtol=1e-4)


def test_vocabulary_errors_and_swap(tiny_teacher_cfg):
    with pytest.raises(ValueError, match='repeats'):
        ViLDBBoxHead(train_classes=['a', 'a'], test_classes=ALL,
                     vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8)
    with pytest.raises(ValueError, match='empty name'):
        ViLDBBoxHead(train_classes=['a', ' '], test_classes=ALL,
                     vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8)
    with pytest.raises(ValueError, match='sets num_classes'):
        _head(tiny_teacher_cfg, num_classes=3)
    head = _head(tiny_teacher_cfg).eval()
    with pytest.raises(ValueError, match='2 classes of dimension 32'):
        head.set_test_vocabulary(['moon', 'sun'], torch.zeros(3, 32))
    head.set_test_vocabulary(['moon', 'sun'])
    assert head.num_classes == 2 and head(torch.randn(1, 8, 7, 7))[0].shape == (1, 3)


def test_region_distillation_loss_matches_l1_formula(tiny_teacher_cfg, tmp_path):
    init_default_scope('mmdet')
    teacher = build_teacher(tiny_teacher_cfg)
    rng = np.random.default_rng(0)
    targets = {img_id: F.normalize(torch.randn(n, 32), dim=-1).numpy()
               for img_id, n in [(1, 3), (2, 2)]}
    boxes = {1: np.array([[0, 0, 20, 20], [10, 10, 40, 30], [5, 5, 60, 60]], np.float32),
             2: np.array([[2, 2, 30, 30], [30, 30, 63, 63]], np.float32)}
    write_region_cache(tmp_path / 'cache', [(i, boxes[i], targets[i]) for i in (1, 2)],
                       teacher.fingerprint, 'test')
    roi_head = ViLDRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8,
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
                                featmap_strides=[4]),
        bbox_head=dict(type='vlkd.ViLDBBoxHead', train_classes=BASE, test_classes=ALL,
                       vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8,
                       fc_out_channels=16),
        region_distillation=dict(cache_dir=str(tmp_path / 'cache'), loss_weight=0.5))
    x = (torch.randn(2, 8, 16, 16),)
    samples = []
    for img_id in (1, 2):  # identity geometry: input image == original image (64 px)
        samples.append(DetDataSample(metainfo=dict(img_id=img_id, img_shape=(64, 64),
                                                   homography_matrix=np.eye(3))))
    loss = roi_head.region_distillation_loss(x, samples)

    rois = torch.cat([torch.cat([torch.full((len(boxes[i]), 1), float(k)),
                                 torch.from_numpy(boxes[i])], 1) for k, i in enumerate((1, 2))])
    student = roi_head.bbox_head.region_embeddings(roi_head.bbox_roi_extractor(x, rois))
    teacher_emb = torch.cat([torch.from_numpy(targets[i]) for i in (1, 2)])
    teacher_emb = teacher_emb.half().float()  # the cache stores float16
    expected = 0.5 * (student - teacher_emb).abs().sum(1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()  # gradients reach the projection
    assert roi_head.bbox_head.projection.weight.grad.abs().sum() > 0


def test_cache_from_another_teacher_is_refused(tiny_teacher_cfg, tmp_path):
    init_default_scope('mmdet')
    write_region_cache(tmp_path / 'cache', [(1, np.zeros((1, 4)), np.zeros((1, 32)))],
                       'some-other-teacher', 'test')
    roi_head = ViLDRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8,
                                roi_layer=dict(type='RoIAlign', output_size=7), featmap_strides=[4]),
        bbox_head=dict(type='vlkd.ViLDBBoxHead', train_classes=BASE, test_classes=ALL,
                       vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8),
        region_distillation=dict(cache_dir=str(tmp_path / 'cache')))
    sample = DetDataSample(metainfo=dict(img_id=1, img_shape=(64, 64), homography_matrix=np.eye(3)))
    with pytest.raises(RuntimeError, match='another teacher|built with teacher'):
        roi_head.region_distillation_loss((torch.randn(1, 8, 16, 16),), [sample])


def test_prompt_ensembling_is_the_mean_of_normalised_template_embeddings(tiny_teacher_cfg):
    """The head's class embeddings, recomputed here template by template."""
    from vlkd.teachers.templates import SHAPES_TEMPLATES
    head = _head(tiny_teacher_cfg)
    teacher = build_teacher(tiny_teacher_cfg)
    for names, embeddings in [(BASE, head.train_embeddings), (ALL, head.test_embeddings)]:
        for name, row in zip(names, embeddings):
            per_template = torch.stack([
                F.normalize(teacher.encode_text([template.replace('{}', name)])[0], dim=0)
                for template in SHAPES_TEMPLATES])  # no name starts with a vowel: no "an"
            expected = per_template.mean(0)
            torch.testing.assert_close(row, expected / expected.norm(), atol=1e-5, rtol=0)
    assert len(SHAPES_TEMPLATES) > 1


def test_vild_image_head_classifies_by_distilled_embeddings_only(tiny_teacher_cfg):
    from vlkd.det import ViLDImageBBoxHead
    init_default_scope('mmdet')
    head = ViLDImageBBoxHead(train_classes=BASE, test_classes=ALL,
                             vocabulary=dict(teacher=tiny_teacher_cfg, templates='shapes'),
                             in_channels=8, roi_feat_size=7, fc_out_channels=16,
                             temperature=0.05, loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    assert 'background_embedding' not in head.state_dict()
    feats = torch.randn(6, 8, 7, 7)
    head.train()
    cls_score, bbox_pred = head(feats)
    assert cls_score is None and bbox_pred.shape == (6, 4)
    labels = torch.tensor([0, 2, 3, 3, 1, 3])  # 3 = background among the 3 base classes
    targets = torch.randn(6, 4)
    losses = head.loss(cls_score, bbox_pred, torch.zeros(6, 5), labels, torch.ones(6),
                       targets, torch.ones(6, 4))
    assert set(losses) == {'loss_bbox'}  # no classification loss, no accuracy
    positives = [0, 1, 4]  # L1 over the foreground RoIs, averaged over all 6 (mmdet's rule)
    expected_box_loss = (bbox_pred[positives] - targets[positives]).abs().sum() / 6
    torch.testing.assert_close(losses['loss_bbox'], expected_box_loss)

    head.eval()
    cls_score, _ = head(feats)
    hidden = feats.flatten(1)
    for fc in head.shared_fcs:
        hidden = torch.relu(fc(hidden))
    region = F.normalize(head.projection(hidden), dim=-1)
    text = build_teacher(tiny_teacher_cfg).encode_class_names(ALL, 'shapes')
    expected = torch.softmax(region @ text.t() / 0.05, dim=-1)
    probs = torch.softmax(cls_score, dim=-1)
    torch.testing.assert_close(probs[:, :-1], expected, atol=1e-5, rtol=1e-4)
    assert torch.all(probs[:, -1] == 0)  # no background class
