"""Regions from the project's tiny Faster R-CNN (configs/_base_/models/
vild_faster_rcnn_r18_fpn.py, with mmdet's Shared2FC classifier head), built with mmdet,
frozen: boxes, features and class distributions against mmdet's modules called here."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.config import Config

from vlkd.registry import MODELS
from vlkd.vlp.encoders import DetectorRegionExtractor

CONFIG = Path(__file__).parents[3] / 'configs/_base_/models/vild_faster_rcnn_r18_fpn.py'
NUM_CLASSES, K = 12, 6


@pytest.fixture(scope='module')
def detector_cfg():
    model = Config.fromfile(CONFIG).model.to_dict()
    head = model['roi_head']['bbox_head']
    head.update(type='Shared2FCBBoxHead', num_classes=NUM_CLASSES, fc_out_channels=48)
    head.pop('temperature')
    model['roi_head']['type'] = 'StandardRoIHead'
    return model


@pytest.fixture(scope='module')
def extractor(detector_cfg):
    torch.manual_seed(0)
    return DetectorRegionExtractor(detector=detector_cfg, num_regions=K)


def images():
    return torch.randint(0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0)
                         ).float()


def test_regions_match_the_detector_modules(extractor):
    det = extractor.detector
    regions = extractor(images())
    assert regions.features.shape == (2, K, 48) and regions.boxes.shape == (2, K, 4)
    assert regions.class_probs.shape == (2, K, NUM_CLASSES + 1) and regions.mask.all()
    assert regions.image_sizes.tolist() == [[64, 64], [64, 64]]
    with torch.no_grad():
        samples = [DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                               scale_factor=(1.0, 1.0))) for _ in range(2)]
        data = det.data_preprocessor(dict(inputs=list(images()), data_samples=samples), False)
        feats = det.extract_feat(data['inputs'])
        proposals = det.rpn_head.predict(feats, data['data_samples'], rescale=False)
        head = det.roi_head.bbox_head
        for i, p in enumerate(proposals):
            top = p.scores.argsort(descending=True)[:K]
            torch.testing.assert_close(regions.boxes[i], p.bboxes[top])
            rois = torch.cat([torch.full((K, 1), float(i)), p.bboxes[top]], 1)  # image i
            rois = det.roi_head.bbox_roi_extractor(feats[:4], rois)
            x = F.relu(head.shared_fcs[0](rois.flatten(1)))
            x = F.relu(head.shared_fcs[1](x))
            torch.testing.assert_close(regions.features[i], x)
            torch.testing.assert_close(regions.class_probs[i], F.softmax(head.fc_cls(x), -1))


def test_detector_is_frozen(extractor):
    assert not any(p.requires_grad for p in extractor.parameters())
    extractor.train()
    assert not extractor.detector.training


def test_region_encoder_runs_the_detector(detector_cfg):
    torch.manual_seed(0)
    encoder = MODELS.build(dict(type='RegionFeatureEncoder', out_dim=16,
                                detector=dict(detector=detector_cfg, num_regions=K)))
    assert encoder.feature_dim == 48
    out = encoder(images=images())
    assert out.tokens.shape == (2, K, 16) and out.class_probs.shape == (2, K, NUM_CLASSES + 1)
    out.tokens.sum().backward()
    assert encoder.feature_projection.weight.grad is not None
    assert all(p.grad is None for p in encoder.detector.parameters())


def test_bad_detector_arguments(detector_cfg):
    with pytest.raises(ValueError, match="no submodule 'projection'"):
        DetectorRegionExtractor(detector=detector_cfg, feature_layer='projection')
    with pytest.raises(ValueError, match='needs detector='):
        DetectorRegionExtractor()


def test_detector_from_a_training_checkpoint(detector_cfg, extractor, tmp_path):
    """A checkpoint as tools/train.py writes it (weights + config text) is all it needs."""
    path = tmp_path / 'iter_100.pth'
    torch.save({'state_dict': extractor.detector.state_dict(),
                'meta': {'cfg': Config(dict(model=detector_cfg)).pretty_text}}, path)
    (tmp_path / 'last_checkpoint').write_text(str(path))  # a work_dir names its checkpoint
    from_checkpoint = DetectorRegionExtractor(checkpoint=str(path), num_regions=K)
    from_work_dir = DetectorRegionExtractor(detector=detector_cfg, checkpoint=str(tmp_path),
                                            num_regions=K)
    expected = extractor(images())
    for loaded in (from_checkpoint, from_work_dir):
        got = loaded(images())
        torch.testing.assert_close(got.features, expected.features)
        torch.testing.assert_close(got.class_probs, expected.class_probs)
