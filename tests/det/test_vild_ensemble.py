"""ViLD's ensembles: the weighted geometric mean against a loop over the formula, the
ViLD-image branch, the ensemble RoI head's detections recomputed here, and the teacher
ensemble's crops of the input pixels."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from vlkd.det import (OpenVocabDetector, ViLDEnsembleBBoxHead, ViLDEnsembleRoIHead,
                      vild_ensemble_scores)
from vlkd.teachers import build_teacher

BASE = ['circle', 'square', 'triangle']
ALL = ['circle', 'square', 'star', 'triangle', 'heart']  # novel: star, heart


def test_ensemble_scores_follow_the_formula():
    rng = np.random.default_rng(0)
    text = rng.dirichlet(np.ones(5), size=4)
    image = rng.dirichlet(np.ones(5), size=4)
    is_base = np.array([True, True, False, True, False])
    got = vild_ensemble_scores(torch.tensor(text), torch.tensor(image), torch.tensor(is_base))
    lam = 2 / 3
    for n, c in itertools.product(range(4), range(5)):
        if is_base[c]:
            expected = text[n, c] ** lam * image[n, c] ** (1 - lam)
        else:
            expected = text[n, c] ** (1 - lam) * image[n, c] ** lam
        assert got[n, c].item() == pytest.approx(expected, rel=1e-12)
    only_text = vild_ensemble_scores(torch.tensor(text), torch.tensor(image),
                                     torch.ones(5, dtype=torch.bool), base_weight=1.0)
    torch.testing.assert_close(only_text, torch.tensor(text))
    with pytest.raises(ValueError, match='base_weight'):
        vild_ensemble_scores(torch.tensor(text), torch.tensor(image), torch.tensor(is_base), 1.5)


def _roi_head(teacher_cfg, **ensemble):
    init_default_scope('mmdet')
    return ViLDEnsembleRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8,
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
                                featmap_strides=[4]),
        bbox_head=dict(type='vlkd.ViLDEnsembleBBoxHead', train_classes=BASE, test_classes=ALL,
                       vocabulary=dict(teacher=teacher_cfg, templates='shapes'), in_channels=8,
                       fc_out_channels=16, temperature=0.05,
                       bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                       target_stds=[0.1, 0.1, 0.2, 0.2])),
        ensemble=dict(image_scores='branch', **ensemble),
        test_cfg=ConfigDict(score_thr=0.0, nms=dict(type='nms', iou_threshold=1.0),
                            max_per_img=1000))


def test_image_branch_is_a_second_head(tiny_teacher_cfg):
    head = _roi_head(tiny_teacher_cfg).bbox_head
    assert isinstance(head, ViLDEnsembleBBoxHead)
    feats = torch.randn(4, 8, 7, 7)
    hidden = feats.flatten(1)
    for fc in head.image_fcs:
        hidden = torch.relu(fc(hidden))
    expected = F.normalize(head.image_projection(hidden), dim=-1)
    torch.testing.assert_close(head.region_embeddings(feats), expected)
    # distilling the image branch leaves the text branch (and its classifier) untouched
    head.region_embeddings(feats).sum().backward()
    assert head.image_projection.weight.grad.abs().sum() > 0
    assert head.projection.weight.grad is None and head.shared_fcs[0].weight.grad is None


def test_branch_ensemble_detections_recomputed(tiny_teacher_cfg):
    torch.manual_seed(0)
    roi_head = _roi_head(tiny_teacher_cfg).eval()
    head = roi_head.bbox_head
    x = (torch.randn(1, 8, 16, 16),)
    proposals = torch.tensor([[2., 3., 30., 40.], [10., 10., 50., 60.], [0., 0., 63., 63.]])
    meta = dict(img_shape=(64, 64), scale_factor=(1.0, 1.0))
    with torch.no_grad():
        result = roi_head.predict_bbox(x, [meta], [InstanceData(bboxes=proposals)],
                                       roi_head.test_cfg)[0]
        rois = torch.cat([torch.zeros(3, 1), proposals], dim=1)
        feats = roi_head.bbox_roi_extractor(x, rois)
        cls_score, deltas = head(feats)
        text = torch.softmax(cls_score, dim=-1)[:, :-1].numpy()
        image = torch.softmax(head.region_embeddings(feats) @ head.test_embeddings.t() / 0.05,
                              dim=-1).numpy()
        boxes = head.bbox_coder.decode(proposals, deltas, max_shape=(64, 64))
    expected = {}
    for n, (c, name) in itertools.product(range(3), enumerate(ALL)):
        lam = 2 / 3 if name in BASE else 1 / 3
        expected[(n, c)] = text[n, c] ** lam * image[n, c] ** (1 - lam)
    assert len(result.scores) == 15  # nothing suppressed (IoU threshold 1), all scores > 0
    for box, label, score in zip(result.bboxes, result.labels, result.scores):
        n = int((boxes - box).abs().sum(1).argmin())
        torch.testing.assert_close(box, boxes[n])
        assert score.item() == pytest.approx(expected[(n, int(label))], rel=1e-5)
    # a user vocabulary: every name outside train_classes counts as novel
    head.set_test_vocabulary(['moon', 'circle'])
    with torch.no_grad():
        result = roi_head.predict_bbox(x, [meta], [InstanceData(bboxes=proposals)],
                                       roi_head.test_cfg)[0]
    assert set(result.labels.tolist()) <= {0, 1} and len(result.scores) == 6


def test_ensemble_configuration_errors(tiny_teacher_cfg):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match="'branch'.*or 'teacher'"):
        ViLDEnsembleRoIHead(
            bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8,
                                    roi_layer=dict(type='RoIAlign', output_size=7),
                                    featmap_strides=[4]),
            bbox_head=dict(type='vlkd.ViLDBBoxHead', train_classes=BASE, test_classes=ALL,
                           vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8),
            ensemble=dict(image_scores='crops'))
    with pytest.raises(TypeError, match='needs bbox_head of type ViLDEnsembleBBoxHead'):
        ViLDEnsembleRoIHead(
            bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=8,
                                    roi_layer=dict(type='RoIAlign', output_size=7),
                                    featmap_strides=[4]),
            bbox_head=dict(type='vlkd.ViLDBBoxHead', train_classes=BASE, test_classes=ALL,
                           vocabulary=dict(teacher=tiny_teacher_cfg), in_channels=8),
            ensemble=dict(image_scores='branch'))
    with pytest.raises(KeyError, match='Unknown ensemble keys'):
        _roi_head(tiny_teacher_cfg, lam=0.5)


def test_teacher_ensemble_scores_crops_of_the_input(tiny_teacher_cfg, shapes_root, vild_config,
                                                    vild_text_checkpoint):
    checkpoint, _ = vild_text_checkpoint
    cfg = vild_config('vild_text_teacher_ensemble_r18_fpn_shapes.py')
    # the ViLD-text weights, scored with the teacher at test time
    detector = OpenVocabDetector.from_config(cfg, checkpoint)
    model = detector.model
    assert model.roi_head.needs_images
    image_path = next((shapes_root / 'images' / 'test').glob('*.png'))
    data = detector.file_pipeline(dict(img_path=str(image_path), img_id=0))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), False)
    pixels = model.input_pixels(batch['inputs'])
    # the pipeline's resized image (BGR uint8, before normalisation and padding) is what the
    # preprocessor normalised: un-normalising gives it back, in RGB
    resized_bgr = data['inputs'].float()
    height, width = resized_bgr.shape[-2:]
    torch.testing.assert_close(pixels[0, :, :height, :width], resized_bgr.flip(0),
                               atol=1e-3, rtol=0)

    boxes = torch.tensor([[4., 4., 60., 60.], [30., 20., 120., 100.]])
    teacher = build_teacher(tiny_teacher_cfg)
    embeddings = teacher.encode_regions(pixels, [boxes], scales=(1.0, 1.5))[0]
    text = teacher.encode_class_names(detector.classes, 'shapes')
    expected = torch.softmax(embeddings @ text.t() / 0.01, dim=-1)
    got = model.roi_head.image_probabilities(None, boxes, pixels)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)

    result = detector(image_path)
    assert len(result['scores']) > 0 and result['scores'].max() <= 1.0
    assert set(result['names']) <= set(detector.classes)
    # the plain mmdet predict path has no pixels for the teacher
    with pytest.raises(ValueError, match="use the detector type 'vlkd.ViLDFasterRCNN'"):
        feats = model.extract_feat(batch['inputs'])
        rpn = model.rpn_head.predict(feats, batch['data_samples'], rescale=False)
        model.roi_head.predict(feats, rpn, batch['data_samples'])
