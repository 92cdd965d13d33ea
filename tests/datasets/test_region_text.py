"""Region files of vlkd-shapes from a (random, frozen) ViLD-text detector, in both modes,
checked against the detector's mmdet modules called here; RegionTextDataset and its collate.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmengine.config import Config
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import init_default_scope
from PIL import Image

from vlkd.datasets.image_text import SampleError
from vlkd.datasets.shapes import SHAPES_CLASSES
from vlkd.registry import DATASETS, MODELS
from vlkd.vlp.encoders import load_region_file

REPO = Path(__file__).resolve().parents[2]
K = 5  # proposals per image


@pytest.fixture(scope='module')
def detector_checkpoint(tmp_path_factory, tiny_teacher_cfg):
    """A randomly initialised ViLD-text detector (configs/vild), saved as tools/train.py
    saves it: weights and the config text."""
    cfg = Config.fromfile(REPO / 'configs/vild/vild_text_r18_fpn_shapes.py')
    cfg.model.roi_head.bbox_head.vocabulary.teacher = tiny_teacher_cfg
    torch.manual_seed(0)
    detector = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('detector') / 'iter_10.pth'
    torch.save({'state_dict': detector.state_dict(),
                'meta': {'cfg': Config(dict(model=cfg.model.to_dict())).pretty_text}}, path)
    return path


def run_tool(argv):
    spec = importlib.util.spec_from_file_location('extract_regions',
                                                  REPO / 'tools' / 'extract_regions.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main(argv)


def reference(detector_checkpoint, shapes_root, split):
    """The detector (eval mode) and, per image of the split: its BGR pixels and GT boxes."""
    from vlkd.det.proposal_embedding import load_proposal_detector
    detector, _ = load_proposal_detector(str(detector_checkpoint))
    coco = json.loads((shapes_root / 'annotations' / f'instances_{split}.json').read_text())
    images = []
    for img in coco['images']:
        rgb = np.array(Image.open(shapes_root / 'images' / split / img['file_name']))
        boxes = [[x, y, x + w, y + h] for a in coco['annotations'] if a['image_id'] == img['id']
                 for x, y, w, h in [a['bbox']]]
        images.append((img['id'], torch.from_numpy(rgb[..., ::-1].copy()).permute(2, 0, 1)
                       .float(), torch.tensor(boxes, dtype=torch.float32)))
    return detector, images


@torch.no_grad()
def features_and_probs(detector, image, boxes):
    """ViLD head's region feature (input of its projection) and class distribution."""
    sample = DetDataSample(metainfo=dict(img_shape=image.shape[1:], ori_shape=image.shape[1:],
                                         scale_factor=(1.0, 1.0)))
    data = detector.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    feats = detector.extract_feat(data['inputs'])
    head = detector.roi_head.bbox_head
    pooled = detector.roi_head.bbox_roi_extractor(feats[:4], bbox2roi([boxes]))
    features = head.region_features(pooled)
    embeddings = F.normalize(head.projection(features), dim=-1)
    classifier = torch.cat([head.test_embeddings,
                            F.normalize(head.background_embedding, dim=0)[None]])
    probs = F.softmax(embeddings @ classifier.T / head.temperature, dim=-1)
    return features, probs, data, feats


def test_ground_truth_boxes_with_the_detector_features(detector_checkpoint, shapes_root,
                                                       tmp_path, capsys):
    out = tmp_path / 'gt'
    run_tool(['--data-root', str(shapes_root), '--split', 'val', '--checkpoint',
              str(detector_checkpoint), '--gt-boxes', '--out', str(out), '--batch-size', '3'])
    assert f'gt_boxes region files of val at {out}' in capsys.readouterr().out
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['class_names'] == list(SHAPES_CLASSES) + ['background']
    assert meta['num_class_columns'] == 13 and meta['feature_dim'] == 256
    assert meta['params']['mode'] == 'gt_boxes' and meta['num_images'] == 4
    detector, images = reference(detector_checkpoint, shapes_root, 'val')
    for img_id, image, boxes in images:
        regions = load_region_file(out / f'{img_id}.npz')
        torch.testing.assert_close(regions.boxes, boxes)  # all objects, in annotation order
        features, probs, _, _ = features_and_probs(detector, image, boxes)
        torch.testing.assert_close(regions.features, features, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(regions.class_probs, probs, atol=1e-5, rtol=1e-4)
        assert regions.image_size == (64, 64)


def test_given_boxes_replace_the_rpn_only_inside_the_block(detector_checkpoint):
    from vlkd.datasets.region_extraction import proposals_from
    from vlkd.vlp.encoders import DetectorRegionExtractor
    extractor = DetectorRegionExtractor(checkpoint=str(detector_checkpoint), num_regions=K,
                                        feature_layer='projection')
    images = torch.randint(0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0)
                           ).float()
    before = extractor(images)
    boxes = [torch.tensor([[1.0, 2.0, 30.0, 40.0]]),
             torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 25.0]])]
    with proposals_from(extractor, boxes):
        inside = extractor(images)
    assert inside.mask.tolist() == [[True, False], [True, True]]
    torch.testing.assert_close(inside.boxes[1], boxes[1])
    torch.testing.assert_close(inside.boxes[0, :1], boxes[0])
    after = extractor(images)
    assert extractor.num_regions == K and torch.equal(after.boxes, before.boxes)
    assert before.mask.sum(1).tolist() == [K, K]


def test_proposals_are_the_detectors_top_rpn_boxes(detector_checkpoint, shapes_root, tmp_path):
    out = tmp_path / 'proposals'
    run_tool(['--data-root', str(shapes_root), '--split', 'test', '--checkpoint',
              str(detector_checkpoint), '--num-regions', str(K), '--out', str(out)])
    detector, images = reference(detector_checkpoint, shapes_root, 'test')
    for img_id, image, _ in images:
        regions = load_region_file(out / f'{img_id}.npz')
        _, _, data, feats = features_and_probs(detector, image, torch.zeros(1, 4))
        with torch.no_grad():
            proposals = detector.rpn_head.predict(feats, data['data_samples'], rescale=False)[0]
        top = proposals.bboxes[proposals.scores.argsort(descending=True)[:K]]
        torch.testing.assert_close(regions.boxes, top)
        features, probs, _, _ = features_and_probs(detector, image, top)
        torch.testing.assert_close(regions.features, features, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(regions.class_probs, probs, atol=1e-5, rtol=1e-4)

    stamp = (out / 'meta.json').stat().st_mtime_ns
    run_tool(['--data-root', str(shapes_root), '--split', 'test', '--checkpoint',
              str(detector_checkpoint), '--num-regions', str(K), '--out', str(out)])
    assert (out / 'meta.json').stat().st_mtime_ns == stamp  # reused
    with pytest.raises(SystemExit, match='num_regions: 5 there, 3 asked'):
        run_tool(['--data-root', str(shapes_root), '--split', 'test', '--checkpoint',
                  str(detector_checkpoint), '--num-regions', '3', '--out', str(out)])


@pytest.fixture(scope='module')
def gt_regions(detector_checkpoint, shapes_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('regions') / 'gt_boxes' / 'train'
    run_tool(['--data-root', str(shapes_root), '--split', 'train', '--checkpoint',
              str(detector_checkpoint), '--gt-boxes', '--out', str(out)])
    return out


def build(shapes_root, region_dir, **kwargs):
    init_default_scope('vlkd')
    return DATASETS.build(dict(type='RegionTextDataset', data_root=str(shapes_root),
                               ann_file='annotations/captions_train.json',
                               region_dir=str(region_dir), **kwargs))


def test_region_text_dataset_and_collate(shapes_root, gt_regions):
    captions = json.loads((shapes_root / 'annotations' / 'captions_train.json').read_text())
    dataset = build(shapes_root, gt_regions)
    assert len(dataset) == len(captions['annotations'])
    items = [dataset[i] for i in range(0, len(dataset), 4)]
    for index, item in zip(range(0, len(dataset), 4), items):
        ann = captions['annotations'][index]
        sample = item['data_samples']
        assert (sample.text, sample.img_id, sample.caption_id) == (
            ann['caption'], ann['image_id'], ann['id'])
        expected = load_region_file(gt_regions / f"{ann['image_id']}.npz")
        torch.testing.assert_close(item['inputs'].features, expected.features)

    collate = MMENGINE_FUNCTIONS.get('vlkd.region_text_collate')
    batch = collate(items, max_regions=2)
    regions = batch['inputs']['regions']
    counts = [min(len(item['inputs'].boxes), 2) for item in items]
    assert regions['features'].shape == (len(items), max(counts), 256)
    assert regions['mask'].sum(1).tolist() == counts
    for i, item in enumerate(items):
        torch.testing.assert_close(regions['boxes'][i, :counts[i]],
                                   item['inputs'].boxes[:counts[i]])
        torch.testing.assert_close(regions['class_probs'][i, :counts[i]],
                                   item['inputs'].class_probs[:counts[i]])
    assert regions['image_sizes'].tolist() == [[64.0, 64.0]] * len(items)
    # the fields of a RegionBatch, which the region encoder takes
    encoder = MODELS.build(dict(type='RegionFeatureEncoder', out_dim=8, feature_dim=256))
    from vlkd.vlp.encoders import RegionBatch
    assert encoder(RegionBatch(**regions)).tokens.shape == (len(items), max(counts), 8)


def test_missing_and_broken_region_files_are_named(shapes_root, gt_regions, tmp_path):
    with pytest.raises(FileNotFoundError, match='extract_regions.py'):
        build(shapes_root, tmp_path / 'nowhere')
    partial = tmp_path / 'partial'
    partial.mkdir()
    for path in sorted(gt_regions.glob('*.npz'))[1:]:
        (partial / path.name).write_bytes(path.read_bytes())
    with pytest.raises(FileNotFoundError, match=r'1 of the 6 images .* have no region file'):
        build(shapes_root, partial)
    first = sorted(gt_regions.glob('*.npz'))[0]
    (partial / first.name).write_bytes(b'garbage')
    dataset = build(shapes_root, partial)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['region_file'].endswith('/' + first.name))
    with pytest.raises(SampleError, match=rf'region_file=.*{first.name}.*corrupt'):
        dataset[index]
