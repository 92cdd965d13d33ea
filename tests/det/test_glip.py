"""GLIP-style student: class prompt tokens from the teacher's text tower, the grounding loss
of the box head and GLIP's test-time class scores, each checked against a computation
written here from the formulas (loops over regions and tokens, open_clip's own tokenizer and
pooled text embedding); and configs/glip trained for 2 iterations on the tiny shapes data."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from vlkd.det import (BertPromptEncoder, ClassPromptEncoder, GLIPBBoxHead, OpenVocabDetector,
                      build_prompt_encoder, detection_prompt)
from vlkd.registry import MODELS
from vlkd.teachers import build_teacher
from vlkd.teachers.embedding_file import save_class_embeddings
from vlkd.vlp.encoders import BertTextEncoder

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
ALL = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
       'heart', 'crescent', 'ellipse', 'arrow']
NOVEL = ['star', 'heart', 'crescent']
BASE = [c for c in ALL if c not in NOVEL]


def _head(teacher_cfg, **kwargs) -> GLIPBBoxHead:
    cfg = dict(_scope_='mmdet', type='vlkd.GLIPBBoxHead', train_classes=BASE, test_classes=ALL,
               text_encoder=teacher_cfg, embed_dim=16, in_channels=4, fc_out_channels=8,
               roi_feat_size=2,
               bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                               target_stds=[0.1, 0.1, 0.2, 0.2]),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    cfg.update(kwargs)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _glip_class_scores(logits: np.ndarray, class_map: np.ndarray) -> np.ndarray:
    """GLIP's MEAN aggregation, by loops: per region and class, the mean over the class's
    tokens of sigmoid(logit)."""
    scores = np.zeros((logits.shape[0], class_map.shape[0]))
    for r in range(logits.shape[0]):
        for c in range(class_map.shape[0]):
            tokens = [t for t in range(logits.shape[1]) if class_map[c, t]]
            scores[r, c] = sum(1 / (1 + math.exp(-logits[r, t])) for t in tokens) / len(tokens)
    return scores


def test_detection_prompt_spans():
    prompt, spans = detection_prompt(['circle', 'hot dog', 'x'])
    assert prompt == 'circle. hot dog. x.'
    assert [prompt[s:e] for s, e in spans] == ['circle', 'hot dog', 'x']


def test_tokenize_matches_open_clip(tiny_teacher_cfg):
    encoder = ClassPromptEncoder(build_teacher(tiny_teacher_cfg))
    prompt = 'circle. pentagon. hot dog.'
    ids, offsets = encoder.tokenize(prompt)
    assert ids.tolist() == encoder.tokenizer.encode(prompt)  # open_clip's own BPE
    for token, (start, end) in zip(ids.tolist(), offsets.tolist()):
        piece = encoder.tokenizer.decode([token]).strip()
        assert piece and piece in prompt[start:end]  # each piece lies in its word's span


def test_token_features_end_of_text_is_pooled_embedding(tiny_teacher_cfg):
    teacher = build_teacher(tiny_teacher_cfg)
    encoder = ClassPromptEncoder(teacher)
    ids = teacher.tokenizer(['circle. square.', 'a star.'])
    features = encoder.token_features(ids)
    assert features.shape == (2, encoder.context_length, teacher.embed_dim)
    eot = ids.argmax(dim=1)  # the end-of-text id is the largest
    with torch.no_grad():
        pooled = teacher.model.encode_text(ids)
    torch.testing.assert_close(features[torch.arange(2), eot], pooled, rtol=1e-5, atol=1e-5)
    # causal tower: a token's feature ignores what follows it
    torch.testing.assert_close(features[0, :2], encoder.token_features(
        teacher.tokenizer(['circle. arrow.']))[0, :2], rtol=1e-5, atol=1e-5)


def test_encode_chunks_long_prompts(tiny_teacher_cfg):
    encoder = ClassPromptEncoder(build_teacher(tiny_teacher_cfg))
    assert encoder.context_length == 16  # 12 classes (about 26 tokens) need 2 chunks
    tokens, class_map = encoder.encode(ALL)
    lengths = [len(encoder.tokenizer.encode(name)) for name in ALL]
    assert class_map.sum(dim=1).tolist() == lengths
    assert (class_map.sum(dim=0) <= 1).all()  # a token belongs to one class at most
    for row in class_map:  # each name's tokens are consecutive, in the class order
        index = row.nonzero().flatten()
        assert (index.diff() == 1).all()
    starts = [row.nonzero()[0].item() for row in class_map]
    assert starts == sorted(starts)
    # names + '.' separators, no start / end of text: 2 chunks of names
    assert len(tokens) == sum(lengths) + len(ALL)
    # greedy chunks: the first holds the most leading names that fit with start / end of
    # text; its tokens are those of its prompt encoded alone
    fits = [k for k in range(1, len(ALL) + 1)
            if len(encoder.tokenizer.encode(detection_prompt(ALL[:k])[0])) + 2 <= 16]
    n = max(fits)
    assert 0 < n < len(ALL)
    words = len(encoder.tokenizer.encode(detection_prompt(ALL[:n])[0]))
    assert starts[n] == words
    ids = encoder.tokenizer([detection_prompt(ALL[:n])[0]])
    torch.testing.assert_close(tokens[:words], encoder.token_features(ids)[0, 1:words + 1])


def test_prompt_errors(tiny_teacher_cfg):
    encoder = ClassPromptEncoder(build_teacher(tiny_teacher_cfg))
    with pytest.raises(ValueError, match='does not fit'):
        encoder.encode(['circle', ' '.join(['square'] * 20)])
    with pytest.raises(ValueError, match='single-spaced'):
        encoder.encode(['hot  dog'])
    hf = build_teacher(dict(type='HFCLIPTeacher', config=dict(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, vocab_size=49408,
                         eos_token_id=49407),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8)))
    with pytest.raises(TypeError, match='open_clip CLIP text tower'):
        ClassPromptEncoder(hf)


TINY_BERT = dict(type='BertTextEncoder', bert_cfg=dict(hidden_size=16, num_hidden_layers=1,
                                                      num_attention_heads=2,
                                                      intermediate_size=32))


def test_bert_prompt_tokens_and_features():
    torch.manual_seed(0)
    encoder = build_prompt_encoder(dict(TINY_BERT, max_length=12))
    assert isinstance(encoder, BertPromptEncoder)
    prompt = 'circle. hexagon. ellipse.'
    ids, offsets = encoder.tokenize(prompt)
    special = set(encoder.tokenizer.special_token_ids)
    own = [i for i in encoder.tokenizer([prompt])['input_ids'][0].tolist() if i not in special]
    assert ids.tolist() == own
    pieces = [p.replace('##', '') for p in encoder.tokenizer.decode(own)]
    assert [prompt[s:e] for s, e in offsets.tolist()] == pieces
    # features of the words: the encoder's own output for the prompt, [CLS] / [SEP] dropped
    with torch.no_grad():
        expected = encoder.encoder.encode([prompt]).tokens[0, 1:len(ids) + 1]
    torch.testing.assert_close(encoder.word_features(ids), expected)
    # 12 shapes do not fit 12 WordPieces: chunks of whole names, every piece mapped once
    tokens, class_map = encoder.encode(ALL)
    lengths = [len(encoder.tokenize(name)[0]) for name in ALL]
    assert class_map.sum(dim=1).tolist() == lengths
    assert len(tokens) == sum(lengths) + len(ALL)  # names and '.' separators
    assert tokens.shape[1] == 16


def test_bert_text_encoder_head(tiny_teacher_cfg):
    head = _head(tiny_teacher_cfg, text_encoder=dict(TINY_BERT, max_length=40))
    assert head.train_tokens.shape[1] == 16 and head.train_class_map.shape[0] == len(BASE)
    head.eval()
    assert head.class_scores(torch.randn(2, 8)).shape == (2, len(ALL))
    with pytest.raises(TypeError, match='built a'):
        build_prompt_encoder(dict(type='RegionWordAlignmentLoss', region_dim=2, token_dim=2,
                                  embed_dim=2))


def test_grounding_loss_against_loops(tiny_teacher_cfg):
    head = _head(tiny_teacher_cfg, grounding=dict(alpha=0.3, gamma=1.5))
    head.train()
    assert head.grounding.log_scale.exp().item() == pytest.approx(10.0)
    assert head.grounding.token_bias.bias.item() == pytest.approx(-math.log(99))
    with torch.no_grad():  # trained-looking bias so that the focal weights are not all tiny
        head.grounding.token_bias.bias.fill_(-1.0)
    regions = torch.randn(7, 8)
    labels = torch.tensor([0, 5, 9, 9, 2, 8, 3])  # 9 = background (9 base classes)
    label_weights = torch.tensor([1., 1., 1., 0., 1., 1., 1.])
    rois = torch.zeros(7, 5)
    bbox_pred, bbox_targets, bbox_weights = torch.randn(7, 4), torch.randn(7, 4), torch.ones(7, 4)
    losses = head.loss(regions, bbox_pred, rois, labels, label_weights, bbox_targets,
                       bbox_weights)

    logits = head.token_logits(regions).detach().double().numpy()
    class_map = head.train_class_map.numpy()
    total, positives = 0.0, 0
    for r in range(7):
        if label_weights[r] == 0:
            continue
        positives += int(labels[r] < 9)
        for t in range(logits.shape[1]):
            target = 1.0 if labels[r] < 9 and class_map[labels[r], t] else 0.0
            p = 1 / (1 + math.exp(-logits[r, t]))
            p_t = p if target else 1 - p
            alpha_t = 0.3 if target else 0.7
            total += -alpha_t * (1 - p_t) ** 1.5 * math.log(p_t)
    assert losses['loss_cls'].item() == pytest.approx(total / positives, rel=1e-5)
    # box regression on the foreground regions only, as mmdet's L1 over all sampled ones
    foreground = (labels < 9).numpy()
    expected = np.abs(bbox_pred.numpy() - bbox_targets.numpy())[foreground].sum() / 7
    assert losses['loss_bbox'].item() == pytest.approx(expected, rel=1e-5)
    scores = _glip_class_scores(logits, class_map)
    expected_acc = 100 * np.mean(scores[foreground].argmax(1) == labels.numpy()[foreground])
    assert losses['acc'].item() == pytest.approx(expected_acc)
    losses['loss_cls'].backward()
    assert head.grounding.region_proj.weight.grad.abs().sum() > 0


def test_test_scores_are_glip_mean_sigmoid(tiny_teacher_cfg):
    head = _head(tiny_teacher_cfg).eval()
    assert head.num_classes == len(ALL)
    roi_feats = torch.randn(5, 4, 2, 2)
    with torch.no_grad():
        regions, bbox_pred = head(roi_feats)
        logits = head.token_logits(regions).double().numpy()
        rois = torch.tensor([[0, 4., 4., 20., 20.]]).repeat(5, 1)
        meta = dict(img_shape=(64, 64), scale_factor=(1.0, 1.0))
        raw = head._predict_by_feat_single(rois, regions, bbox_pred, meta, rcnn_test_cfg=None)
        nms = head._predict_by_feat_single(rois, regions, bbox_pred, meta, rcnn_test_cfg=ConfigDict(
            score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    expected = _glip_class_scores(logits, head.test_class_map.numpy())
    assert raw.scores.shape == (5, len(ALL) + 1)
    np.testing.assert_allclose(raw.scores[:, :-1].numpy(), expected, rtol=1e-5)
    assert (raw.scores[:, -1] == 0).all()  # no background probability, no softmax
    # per class, NMS keeps the best-scored of the 5 identical-size boxes near each other
    assert len(nms.scores) >= len(ALL)
    best = {c: expected[:, c].max() for c in range(len(ALL))}
    for score, label in zip(nms.scores.tolist(), nms.labels.tolist()):
        assert score <= best[label] + 1e-6


def test_set_test_vocabulary_and_errors(tiny_teacher_cfg):
    head = _head(tiny_teacher_cfg).eval()
    head.set_test_vocabulary(['arrow', 'moon'])
    assert head.num_classes == 2 and head.test_class_map.shape[0] == 2
    assert head.class_scores(torch.randn(3, 8)).shape == (3, 2)
    with pytest.raises(ValueError, match='class names only'):
        head.set_test_vocabulary(['arrow'], torch.randn(1, 32))
    with pytest.raises(ValueError, match='sets loss_cls itself'):
        _head(tiny_teacher_cfg, loss_cls=dict(type='CrossEntropyLoss'))
    with pytest.raises(ValueError, match='logit_scale must be positive'):
        _head(tiny_teacher_cfg, logit_scale=0.0)
    head.train()
    with pytest.raises(ValueError, match='region features'):
        head.loss(torch.randn(2, 3), torch.randn(2, 4), torch.zeros(2, 5),
                  torch.tensor([0, 9]), torch.ones(2), torch.zeros(2, 4), torch.zeros(2, 4))


@pytest.mark.slow
def test_config_trains_and_tests(relocate_config, tmp_path):
    cfg = relocate_config(Config.fromfile(CONFIGS / 'glip' / 'glip_clip_trunk_shapes.py'))
    cfg.train_cfg.max_iters = 2
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.param_scheduler = []
    head = cfg.model.roi_head.bbox_head
    assert head.type == 'vlkd.GLIPBBoxHead' and head.train_classes == BASE
    assert head.test_classes == ALL
    assert cfg.train_dataloader.dataset.ann_file.endswith('instances_train_base.json')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert 'train/loss_cls' in runner.message_hub.log_scalars
    metrics = runner.test()
    assert 0.0 <= metrics['ov_coco/bbox_AP50_novel'] <= 1.0
    # the trained detector queried with names it never saw, as tools/infer.py does
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # every box: the 2-iteration scores are low
    detector = OpenVocabDetector.from_config(cfg, cfg.work_dir, classes=['moon', 'arrow'])
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    result = detector(image)
    assert detector.classes == ['moon', 'arrow'] and len(result['scores']) > 0
    assert set(result['names']) <= {'moon', 'arrow'}
    assert ((result['scores'] > 0) & (result['scores'] < 1)).all()  # GLIP's sigmoid means
    names_file = tmp_path / 'vocabulary.txt'
    names_file.write_text('crescent moon\nstar\n')
    detector.set_vocabulary_file(names_file)
    assert detector.classes == ['crescent moon', 'star']
    embedding_file = tmp_path / 'vocabulary.pt'
    save_class_embeddings(embedding_file, ['star'], torch.ones(1, 4) / 2,
                          teacher_fingerprint='another teacher', source='test')
    with pytest.raises(ValueError, match='text file with one name per line'):
        detector.set_vocabulary_file(embedding_file)
