"""VLPModel on regions and video: UNITER's masked region objectives (one shared fused pass,
losses written out), GLIP-style grounding (prompt token map, positive maps, class scores),
HERO's frame order wiring, the region / video data preprocessors and the object-region data.
"""
import json
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement
from torchvision.ops import box_iou

from vlkd.registry import DATASETS, MODELS, TRANSFORMS
from vlkd.vlp.encoders import RegionBatch, RegionSet, load_region_file, save_region_file
from vlkd.vlp.objectives import shuffle_frames
from vlkd.vlp.views import VideoBatch

WIDTH = 32
BERT = dict(type='BertTextEncoder', max_length=24,
            bert_cfg=dict(hidden_size=WIDTH, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=2 * WIDTH, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0))
SINGLE = dict(type='SingleStreamFusion', width=WIDTH, depth=1, num_heads=2)
TEXTS = ['a red star and a blue circle', 'a heart', 'two shapes: a square and a cross']


def build(**cfg):
    init_default_scope('vlkd')
    torch.manual_seed(0)
    return MODELS.build(dict(type='VLPModel', **cfg))


def regions(num_classes: int = 5) -> RegionBatch:
    """3 images with 4, 2 and 3 regions (padded to 4) of 8-d features."""
    g = torch.Generator().manual_seed(2)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    xy = torch.rand(3, 4, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 10 + torch.rand(3, 4, 2, generator=g) * 20], -1)
    probs = torch.randn(3, 4, num_classes, generator=g).softmax(-1)
    return RegionBatch(torch.randn(3, 4, 8, generator=g), boxes, torch.full((3, 2), 64.0),
                       mask, probs)


def samples(texts=TEXTS, **fields):
    out = []
    for i, text in enumerate(texts):
        sample = BaseDataElement(metainfo=dict(text=text))
        for key, values in fields.items():
            sample.set_metainfo({key: values[i]})
        out.append(sample)
    return out


def count_fusions(model):
    counts = Counter()
    original = model.backbone.fuse

    def counted(*args, **kwargs):
        counts['fuse'] += 1
        return original(*args, **kwargs)
    model.backbone.fuse = counted
    return counts


def test_masked_region_objectives_share_one_pass_and_follow_their_formulas():
    model = build(image_encoder=dict(type='RegionFeatureEncoder', out_dim=WIDTH, feature_dim=8,
                                     image_token=True),
                  text_encoder=dict(BERT, num_layers=0), fusion=SINGLE, objectives=dict(
                      mrfr=dict(type='MaskedFeatureRegressionTask', mask_ratio=0.5),
                      mrc=dict(type='MaskedFeatureClassificationTask', num_classes=5,
                               mask_ratio=0.5),
                      mrc_kl=dict(type='MaskedFeatureClassificationTask', num_classes=5,
                                  soft_labels=True, mask_ratio=0.5)))
    batch = regions()
    counts = count_fusions(model)
    step = model.make_step(batch, samples())
    out = {name: model.tasks[name](step)['loss'] for name in ('mrfr', 'mrc', 'mrc_kl')}
    assert counts['fuse'] == 1
    _, mask = step.masked_units(0.5)
    assert mask.sum(1).tolist() == [2, 1, 2] and not (mask & ~batch.mask).any()
    with torch.no_grad():  # the pass by hand: zeroed masked features, caption whole
        backbone = model.backbone
        image = backbone.image_encoder(regions=batch, masked_regions=mask)
        assert torch.equal(image.features[:, 1:], batch.features)  # targets stay unmasked
        text = backbone.text_encoder.encode(TEXTS)
        hidden = backbone.fusion(text.tokens, text.mask, image.tokens, image.mask
                                 ).image_tokens[:, 1:][mask]
        regression = model.tasks.mrfr.loss.head(hidden)
        mse = ((regression - batch.features[mask]) ** 2).mean()
        log_probs = model.tasks.mrc.loss.head(hidden).log_softmax(-1)
        hard = -log_probs[torch.arange(len(hidden)), batch.class_probs[mask].argmax(-1)].mean()
        log_probs = model.tasks.mrc_kl.loss.head(hidden).log_softmax(-1)
        p = batch.class_probs[mask]
        kl = (p * (p.log() - log_probs)).sum(-1).mean()
    torch.testing.assert_close(out['mrfr'], mse)
    torch.testing.assert_close(out['mrc'], hard)
    torch.testing.assert_close(out['mrc_kl'], kl)


def glip(fusion=None):
    return build(image_encoder=dict(type='RegionFeatureEncoder', out_dim=WIDTH, feature_dim=8),
                 text_encoder=BERT, fusion=fusion, objectives=dict(grounding=dict(
                     type='RegionGroundingTask', classes=['circle', 'crescent', 'star'],
                     label_classes=['circle', 'heart', 'star', 'crescent'], embed_dim=16)),
                 zero_shot=dict(classes=['star', 'heart', 'circle']))


def test_grounding_aligns_regions_with_their_class_tokens():
    model = glip()
    tokenizer = model.backbone.tokenizer
    task = model.tasks.grounding
    ids, mask, class_map = task.prompt(model.backbone, ['circle', 'crescent', 'star'])
    assert tokenizer.decode(ids[0][mask[0]].tolist())[:2] == ['[CLS]', 'circle']
    for row, name in zip(class_map, ['circle', 'crescent', 'star']):
        assert ''.join(tokenizer.decode(ids[0][row].tolist())).replace('##', '') == name
    labels = [[0, 1, -1, 3], [2, 3], [1, 0, 0]]  # indices into label_classes; heart: no prompt
    batch = regions()
    step = model.make_step(batch, samples(region_labels=[torch.tensor(x) for x in labels]))
    loss = task(step)['loss']
    # by hand: region -> prompt class (heart and -1 are background) -> its tokens
    to_prompt = {0: 0, 1: -1, 2: 2, 3: 1, -1: -1}
    positive = torch.zeros(3, 4, ids.shape[1], dtype=torch.bool)
    for b, row in enumerate(labels):
        for r, label in enumerate(row):
            if to_prompt[label] >= 0:
                positive[b, r] = class_map[to_prompt[label]]
    words = mask & ~torch.isin(ids, torch.tensor(tokenizer.special_token_ids))
    with torch.no_grad():
        backbone = model.backbone
        region_tokens = backbone.image_encoder(regions=batch).tokens
        prompt_tokens = backbone.text_encoder(ids.expand(3, -1), mask.expand(3, -1)).tokens
        expected = task.loss(region_tokens, prompt_tokens, positive, words.expand(3, -1),
                             batch.mask)
        torch.testing.assert_close(loss, expected)
        # zero-shot: a prompt of the zero-shot classes, mean logit of each name's tokens,
        # best region of the input
        scores = model.zero_shot_scores(batch)
        ids, mask, class_map = task.prompt(backbone, ['star', 'heart', 'circle'])
        logits = task.loss.logits(region_tokens, backbone.text_encoder(
            ids.expand(3, -1), mask.expand(3, -1)).tokens)
        for b in range(3):
            for c in range(3):
                per_region = logits[b][:, class_map[c]].mean(-1)[batch.mask[b]]
                assert scores[b, c].item() == pytest.approx(per_region.max().item(), rel=1e-5)


def test_grounding_with_deep_fusion_and_missing_labels():
    model = glip(fusion=dict(type='CoAttentionFusion', width=WIDTH, depth=1, num_heads=2))
    batch = regions()
    loss = model(batch, samples(region_labels=[torch.tensor([0]), torch.tensor([2, 3]),
                                               torch.tensor([-1])]), mode='loss')
    loss['loss_grounding'].backward()
    assert model.backbone.fusion.layers[0].text_to_image.query.weight.grad is not None
    with pytest.raises(ValueError, match='needs region_labels'):
        model(batch, samples(), mode='loss')


def test_frame_order_shuffles_features_before_the_temporal_positions():
    model = build(image_encoder=dict(
        type='FrameSequenceEncoder', out_dim=WIDTH, max_frames=4, image_encoder=dict(
            type='ViTPatchEncoder', vision_cfg=dict(image_size=16, patch_size=8, width=WIDTH,
                                                    layers=1, head_width=16))),
        text_encoder=BERT, fusion=SINGLE,
        objectives=dict(fom=dict(type='FrameOrderTask', shuffle_ratio=0.5)))
    video = VideoBatch(torch.randn(3, 4, 3, 16, 16), torch.tensor([4, 3, 4]))
    step = model.make_step(video, samples())
    torch.manual_seed(5)
    loss = model.tasks.fom(step)['loss']
    encoded = step.image.encoded
    torch.manual_seed(5)
    frames, targets = shuffle_frames(encoded.features, 0.5, encoded.mask)
    for b, t in (targets != -100).nonzero().tolist():  # a permutation of the frames
        assert torch.equal(frames[b, t], encoded.features[b, targets[b, t]])
    assert (targets[1, 3] == -100) and (targets != -100).sum(1).tolist() == [2, 2, 2]
    with torch.no_grad():
        encoder, backbone = model.backbone.image_encoder, model.backbone
        tokens = encoder.add_positions(frames, encoded.mask).tokens
        text = backbone.text_encoder.encode(TEXTS)
        hidden = backbone.fusion(text.tokens, text.mask, tokens, encoded.mask).image_tokens
        logits = model.tasks.fom.loss.head(hidden)
        terms = [-logits[b, t].masked_fill(~encoded.mask[b], -torch.inf).log_softmax(-1)[
            targets[b, t]] for b, t in (targets != -100).nonzero().tolist()]
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_data_preprocessors():
    init_default_scope('vlkd')
    video = MODELS.build(dict(type='VideoDataPreprocessor', mean=(10.0, 20.0, 30.0),
                              std=(2.0, 4.0, 5.0)))
    frames = torch.randint(0, 256, (2, 3, 3, 4, 4), dtype=torch.uint8)
    out = video(dict(inputs=dict(frames=frames, frame_mask=torch.ones(2, 3, dtype=torch.bool),
                                 num_frames=torch.tensor([3, 2])), data_samples=[]))
    rgb = frames.flip(2).float()  # BGR files -> RGB
    expected = (rgb - torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1)) / torch.tensor(
        [2.0, 4.0, 5.0]).view(3, 1, 1)
    torch.testing.assert_close(out['inputs'].frames, expected)
    assert out['inputs'].num_frames.tolist() == [3, 2]
    region = MODELS.build(dict(type='RegionDataPreprocessor'))
    batch = regions()
    fields = dict(features=batch.features, boxes=batch.boxes, image_sizes=batch.image_sizes,
                  mask=batch.mask, class_probs=batch.class_probs)
    out = region(dict(inputs=dict(regions=fields), data_samples=[]))
    assert isinstance(out['inputs'], RegionBatch)
    assert torch.equal(out['inputs'].features, batch.features)
    with pytest.raises(ValueError, match='region_text_collate'):
        region(dict(inputs=torch.zeros(2, 3), data_samples=[]))


def test_region_labels_by_iou(shapes_regions_root):
    import vlkd.vlp.region_data  # noqa: F401  (registers the transforms and the dataset)
    instances = shapes_regions_root / 'annotations' / 'instances_train.json'
    coco = json.loads(instances.read_text())
    image = coco['images'][0]
    anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
    gt = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)])
    # each box shifted by 1 px (IoU > 0.5 for these sizes), then one box far from all
    shifted = torch.cat([gt + 1, torch.tensor([[0.0, 0.0, 1.0, 1.0]])])
    results = dict(img_id=image['id'], regions=RegionSet(
        shifted, torch.zeros(len(shifted), 2), torch.full((len(shifted), 2), 0.5), (64, 64)))
    labels = TRANSFORMS.build(dict(type='AssignRegionLabels', instances_file=str(instances)))(
        results)['region_labels']
    names = {c['id']: c['name'] for c in coco['categories']}
    classes = [c['name'] for c in sorted(coco['categories'], key=lambda c: c['id'])]
    expected = []
    for box in shifted:
        iou = [box_iou(box[None], g[None]).item() for g in gt]
        best = int(np.argmax(iou))
        expected.append(classes.index(names[anns[best]['category_id']]) if iou[best] >= 0.5
                        else -1)
    assert labels.tolist() == expected and expected[-1] == -1


def test_object_region_items(shapes_regions_root, tmp_path):
    import vlkd.vlp.region_data  # noqa: F401
    dataset = DATASETS.build(dict(type='ShapesObjectRegionDataset',
                                  data_root=str(shapes_regions_root),
                                  ann_file='annotations/instances_val.json',
                                  region_dir='regions/gt_boxes/val/'))
    coco = json.loads((shapes_regions_root / 'annotations/instances_val.json').read_text())
    assert len(dataset) == len(coco['annotations'])
    item = dataset[1]
    info = dataset.get_data_info(1)
    stored = load_region_file(info['region_file'])
    k = info['region_index']
    assert torch.equal(item['inputs'].features, stored.features[k:k + 1])
    assert item['data_samples'].gt_label == info['gt_label']
    assert item['data_samples'].text.startswith('a ')
    # region files whose boxes are not the objects' (e.g. proposals) are refused
    bad = tmp_path / 'regions'
    for path in (shapes_regions_root / 'regions/gt_boxes/val').glob('*.npz'):
        regions = load_region_file(path)
        save_region_file(bad / path.name, RegionSet(regions.boxes.flip(0), regions.features,
                                                    regions.class_probs, regions.image_size))
    dataset = DATASETS.build(dict(type='ShapesObjectRegionDataset',
                                  data_root=str(shapes_regions_root),
                                  ann_file='annotations/instances_val.json',
                                  region_dir=str(bad)))
    multi = [i for i in range(len(dataset))
             if dataset.get_data_info(i)['region_index'] == 0 and
             len(load_region_file(dataset.get_data_info(i)['region_file']).boxes) > 1]
    with pytest.raises(Exception, match='does not hold the ground-truth box'):
        dataset[multi[0]]


def test_embedding_fields_for_retrieval_and_itm_accuracy():
    vit = dict(type='ViTPatchEncoder', vision_cfg=dict(image_size=32, patch_size=8,
                                                       width=WIDTH, layers=1, head_width=16))
    model = build(image_encoder=vit, text_encoder=BERT, fusion=SINGLE, objectives=dict(
        itc=dict(type='ImageTextContrastTask', embed_dim=16),
        itm=dict(type='ImageTextMatchingTask'))).eval()
    images = torch.randn(2, 3, 32, 32)
    data_samples = samples(texts=['a star', 'a heart'],
                           texts_all=[['a star', 'one star'], ['a heart']],
                           negative_text=['a cross', 'a square'])
    for sample in data_samples:
        sample.set_metainfo(dict(texts=sample.texts_all))
    with torch.no_grad():
        out = model.predict(images, data_samples)
        for i, sample in enumerate(out):
            torch.testing.assert_close(sample.text_embeddings,
                                       model.encode_text(data_samples[i].texts))
            for j, text in enumerate([sample.text, sample.negative_text]):
                encoded = model.backbone.text_encoder.encode([text])
                image = model.backbone.image_encoder(images[i:i + 1])
                fused = model.backbone.fusion(encoded.tokens, encoded.mask, image.tokens)
                torch.testing.assert_close(sample.itm_logits[j],
                                           model.tasks.itm.loss.head(fused.cls)[0, 0])
            assert sample.itm_labels.tolist() == [1, 0]
        torch.testing.assert_close(torch.stack([s.image_embedding for s in out]),
                                   model.encode_image(images))
