"""PrefixLM: the attention mask and the next-token labels against hand-built loops, the loss
against shifted cross-entropy written with loops, and the mask in real attention (prefix
outputs do not depend on the suffix, no empty rows)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS
from vlkd.vlp.objectives.prefix_lm import (prefix_lm_attention_mask, prefix_lm_labels,
                                           sample_prefix_lengths)

TEXT_MASK = torch.tensor([[1, 1, 1, 1, 1, 0],
                          [1, 1, 1, 0, 0, 0],
                          [1, 1, 1, 1, 1, 1]])
PREFIX = torch.tensor([2, 0, 5])
IMAGE_MASK = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 1, 0]])


def loop_mask(prefix, text_mask, image_mask):
    """Rules one by one: a padded key is never seen; a prefix key is seen by everyone; a
    suffix key only by itself and later positions."""
    n, length = len(image_mask), len(text_mask)
    valid = list(image_mask) + list(text_mask)
    mask = np.zeros((n + length, n + length), dtype=bool)
    for q in range(n + length):
        for k in range(n + length):
            if not valid[k]:
                continue
            key_in_prefix = k < n + prefix
            mask[q, k] = key_in_prefix or k <= q
    return mask


def test_mask_matches_the_loop():
    mask = prefix_lm_attention_mask(PREFIX, TEXT_MASK, 3, IMAGE_MASK)
    assert mask.shape == (3, 9, 9) and mask.dtype == torch.bool
    for b in range(3):
        expected = loop_mask(int(PREFIX[b]), TEXT_MASK[b].tolist(), IMAGE_MASK[b].tolist())
        np.testing.assert_array_equal(mask[b].numpy(), expected)


def test_mask_in_attention_keeps_prefix_blind_to_the_suffix():
    torch.manual_seed(0)
    mask = prefix_lm_attention_mask(PREFIX, TEXT_MASK, 3, IMAGE_MASK)
    x = torch.randn(3, 9, 4)
    out = F.scaled_dot_product_attention(x, x, x, attn_mask=mask)
    assert torch.isfinite(out).all()
    changed = x.clone()
    changed[0, 3 + 2:] += 1.0  # sample 0: change its suffix (text tokens 2..)
    out_changed = F.scaled_dot_product_attention(changed, changed, changed, attn_mask=mask)
    torch.testing.assert_close(out_changed[0, :5], out[0, :5])  # image + 2 prefix tokens
    assert not torch.allclose(out_changed[0, 5], out[0, 5])


def test_labels_are_the_next_real_suffix_token():
    ids = torch.arange(18).reshape(3, 6) + 10
    labels = prefix_lm_labels(ids, PREFIX, TEXT_MASK)
    for b in range(3):
        for t in range(6):
            target = t + 1 < 6 and t + 1 >= PREFIX[b] and TEXT_MASK[b, t + 1] == 1
            assert labels[b, t] == (ids[b, t + 1] if target else -100)


def test_loss_is_shifted_cross_entropy_on_the_suffix():
    torch.manual_seed(1)
    loss = MODELS.build(dict(type='PrefixLanguageModelingLoss', hidden_dim=8,
                             vocab_size=30)).double()
    hidden = torch.randn(3, 6, 8, dtype=torch.float64)
    ids = torch.randint(0, 30, (3, 6))
    with torch.no_grad():
        log_probs = F.log_softmax(loss.head.decoder(loss.head.transform(hidden)), -1).numpy()
    terms = [-log_probs[b, t, ids[b, t + 1]] for b in range(3) for t in range(5)
             if t + 1 >= PREFIX[b] and TEXT_MASK[b, t + 1]]
    assert len(terms) == 3 + 2 + 1
    value = loss(hidden, ids, PREFIX, TEXT_MASK)
    assert value.item() == pytest.approx(np.mean(terms), rel=1e-10)


def test_sampled_prefix_lengths_leave_a_token_to_generate():
    text_mask = torch.tensor([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).repeat(400, 1)
    lengths = sample_prefix_lengths(text_mask, torch.Generator().manual_seed(0))
    for row, n in ((0, 6), (1, 2), (2, 1)):
        counts = np.bincount(lengths[row::3].numpy(), minlength=n)
        assert len(counts) == n and (counts > 0).all()  # every value 0..n-1, none beyond
    with pytest.raises(ValueError, match='sample 1 has no text token'):
        sample_prefix_lengths(torch.tensor([[1, 0], [0, 0]]))


def test_shape_errors():
    with pytest.raises(ValueError, match=r'prefix_lengths must be integers of shape \(3,\)'):
        prefix_lm_attention_mask(PREFIX[:2], TEXT_MASK)
    with pytest.raises(ValueError, match=r'image_mask must be \(B, N\) = \(3, 2\)'):
        prefix_lm_attention_mask(PREFIX, TEXT_MASK, 2, IMAGE_MASK)
    with pytest.raises(ValueError, match=r'input_ids must be \(B, L\) = \(3, 6\)'):
        prefix_lm_labels(torch.zeros(3, 5, dtype=torch.long), PREFIX, TEXT_MASK)
