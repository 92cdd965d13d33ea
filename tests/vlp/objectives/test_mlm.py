"""BERT masking rates against their binomial expectations (seeded, 4-sigma bounds), random
replacements against the uniform law (chi-square), and the MLM loss (with and without
momentum soft targets) against the head and cross-entropy written in numpy."""
import math

import numpy as np
import pytest
import torch
from scipy.special import erf
from scipy.stats import chisquare

from vlkd.registry import MODELS
from vlkd.vlp.objectives import MaskedLanguageModelingLoss, mask_tokens

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 20
SPECIAL = (PAD, CLS, SEP, MASK)


def token_batch(batch=200, length=40, seed=0):
    """[CLS] words [SEP] [PAD]..., random lengths, words in 4..VOCAB-1."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=g)
    lengths = torch.randint(3, length + 1, (batch,), generator=g)
    positions = torch.arange(length)
    ids[:, 0] = CLS
    ids[positions >= lengths[:, None]] = PAD
    ids[torch.arange(batch), lengths - 1] = SEP
    return ids, (positions < lengths[:, None]).long()


def within(count, trials, p, sigmas=4.0):
    return abs(count - trials * p) <= sigmas * math.sqrt(trials * p * (1 - p))


def test_masking_rates_and_labels():
    ids, attention = token_batch()
    masked, labels = mask_tokens(ids, MASK, VOCAB, SPECIAL, attention,
                                 generator=torch.Generator().manual_seed(1))
    maskable = (attention.bool() & (ids > MASK)).numpy()
    picked = (labels != -100).numpy()
    ids, masked, labels = ids.numpy(), masked.numpy(), labels.numpy()
    assert not picked[~maskable].any()            # never padding or special tokens
    assert (masked[~picked] == ids[~picked]).all()  # untouched elsewhere
    assert (labels[picked] == ids[picked]).all()
    n_picked = picked.sum()
    assert within(n_picked, maskable.sum(), 0.15)
    became_mask = (masked[picked] == MASK).sum()
    changed_to_word = ((masked[picked] != MASK) & (masked[picked] != ids[picked])).sum()
    # a random draw among the 16 words equals the original one time in 16
    assert within(became_mask, n_picked, 0.8)
    assert within(changed_to_word, n_picked, 0.1 * 15 / 16)
    assert within(n_picked - became_mask - changed_to_word, n_picked, 0.1 + 0.1 / 16)


def test_random_replacements_are_uniform_over_non_special_tokens():
    ids, attention = token_batch(seed=2)
    masked, labels = mask_tokens(ids, MASK, VOCAB, SPECIAL, attention, mask_prob=1.0,
                                 mask_token_prob=0.0, random_token_prob=1.0,
                                 generator=torch.Generator().manual_seed(3))
    drawn = masked[labels != -100].numpy()
    assert drawn.min() >= 4
    counts = np.bincount(drawn, minlength=VOCAB)[4:]
    assert chisquare(counts).pvalue > 1e-3


def test_masking_errors_name_the_expected_input():
    ids, attention = token_batch(batch=2)
    with pytest.raises(ValueError, match=r'integer \(B, L\)'):
        mask_tokens(ids[0], MASK, VOCAB)
    with pytest.raises(ValueError, match=r'attention_mask must be \(B, L\) = \(2, 40\)'):
        mask_tokens(ids, MASK, VOCAB, SPECIAL, attention[:, :5])
    with pytest.raises(ValueError, match='mask_token_prob'):
        mask_tokens(ids, MASK, VOCAB, mask_token_prob=0.95, random_token_prob=0.1)
    with pytest.raises(ValueError, match='no token of the vocabulary'):
        mask_tokens(ids, MASK, 4, SPECIAL)


def numpy_head(h, loss):
    """BERT head: dense, exact GELU, LayerNorm, decoder."""
    dense, _, norm = loss.head.transform
    w1, b1 = dense.weight.detach().numpy(), dense.bias.detach().numpy()
    gamma, beta = norm.weight.detach().numpy(), norm.bias.detach().numpy()
    w2, b2 = loss.head.decoder.weight.detach().numpy(), loss.head.decoder.bias.detach().numpy()
    x = h @ w1.T + b1
    x = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    return (gamma * x + beta) @ w2.T + b2


def log_softmax(z):
    return z - z.max() - np.log(np.exp(z - z.max()).sum())


def test_loss_is_cross_entropy_of_the_head_on_masked_positions():
    torch.manual_seed(0)
    loss = MODELS.build(dict(type='MaskedLanguageModelingLoss', hidden_dim=8,
                             vocab_size=VOCAB, loss_weight=2.0)).double()
    hidden = torch.randn(3, 5, 8, dtype=torch.float64)
    labels = torch.full((3, 5), -100)
    labels[0, 1], labels[0, 4], labels[2, 2] = 7, 11, 19
    soft = torch.softmax(torch.randn(3, VOCAB, dtype=torch.float64), -1)
    positions = [(0, 1), (0, 4), (2, 2)]
    hard_terms, soft_terms = [], []
    for k, (b, t) in enumerate(positions):
        log_p = log_softmax(numpy_head(hidden[b, t].numpy(), loss))
        hard_terms.append(-log_p[labels[b, t]])
        soft_terms.append(-(soft[k].numpy() * log_p).sum())
    assert loss(hidden, labels).item() == pytest.approx(2 * np.mean(hard_terms), rel=1e-9)
    mixed = loss(hidden, labels, soft_targets=soft, alpha=0.4)
    expected = 2 * (0.6 * np.mean(hard_terms) + 0.4 * np.mean(soft_terms))
    assert mixed.item() == pytest.approx(expected, rel=1e-9)


def test_no_masked_position_gives_zero_with_a_graph():
    loss = MaskedLanguageModelingLoss(hidden_dim=4, vocab_size=VOCAB)
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    value = loss(hidden, torch.full((2, 3), -100))
    value.backward()
    assert value.item() == 0.0 and hidden.grad is not None


def test_tied_decoder_and_shape_errors():
    loss = MaskedLanguageModelingLoss(hidden_dim=4, vocab_size=VOCAB)
    embedding = torch.nn.Embedding(VOCAB, 4)
    loss.tie_weights(embedding)
    assert loss.head.decoder.weight is embedding.weight
    with pytest.raises(ValueError, match=r'\(V, H\) = \(20, 4\)'):
        loss.tie_weights(torch.nn.Embedding(VOCAB, 5))
    with pytest.raises(ValueError, match=r'hidden_states must be \(B, L, 4\)'):
        loss(torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r'labels must be \(B, L\) = \(2, 3\)'):
        loss(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    labels = torch.tensor([[5, -100, -100], [-100, 6, -100]])
    with pytest.raises(ValueError, match=r'soft_targets must be \(M, V\) = \(2, 20\)'):
        loss(torch.randn(2, 3, 4), labels, soft_targets=torch.ones(3, VOCAB) / VOCAB)
