"""Attention building blocks against torch.nn.MultiheadAttention with the same weights, and
the mask conventions of attention_bias."""
import torch
from torch import nn

from vlkd.vlp.fusion import MultiHeadAttention, attention_bias, causal_mask


def reference_attention(ours: MultiHeadAttention, dim, kv_dim):
    ref = nn.MultiheadAttention(dim, ours.num_heads, batch_first=True, kdim=kv_dim,
                                vdim=kv_dim)
    with torch.no_grad():
        if kv_dim == dim:
            ref.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight,
                                                ours.value.weight]))
        else:
            ref.q_proj_weight.copy_(ours.query.weight)
            ref.k_proj_weight.copy_(ours.key.weight)
            ref.v_proj_weight.copy_(ours.value.weight)
        ref.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    return ref


def test_self_attention_with_padding_and_mask_matches_torch():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 4)
    ref = reference_attention(attention, 16, 16)
    x = torch.randn(2, 5, 16)
    padding = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    ours = attention(x, bias=attention_bias(padding, causal_mask(5)))
    theirs, _ = ref(x, x, x, key_padding_mask=~padding, attn_mask=~causal_mask(5),
                    need_weights=False)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_cross_attention_with_other_width_matches_torch():
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, 2, kv_dim=24)
    ref = reference_attention(attention, 16, 24)
    x, context = torch.randn(3, 4, 16), torch.randn(3, 6, 24)
    padding = torch.ones(3, 6, dtype=torch.bool)
    padding[1, 4:] = False
    ours = attention(x, context, bias=attention_bias(padding))
    theirs, _ = ref(x, context, context, key_padding_mask=~padding, need_weights=False)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_attention_bias_conventions():
    allowed = torch.tensor([[True, False], [True, True]])
    bias = attention_bias(attn_mask=allowed)
    assert bias.shape == (1, 1, 2, 2)
    assert bias[0, 0, 0, 0] == 0 and bias[0, 0, 0, 1] == torch.finfo(torch.float32).min
    additive = torch.tensor([[0.0, -float('inf')], [0.5, 0.0]])
    bias = attention_bias(torch.tensor([[True, True], [False, True]]), additive)
    assert bias.shape == (2, 1, 2, 2) and torch.isfinite(bias).all()
    assert bias[0, 0, 1, 0] == 0.5 and bias[1, 0, 1, 0] == torch.finfo(torch.float32).min
    assert attention_bias() is None
    # a query that may see no key gets finite (uniform) weights, not NaN
    attention = MultiHeadAttention(8, 2)
    out = attention(torch.randn(1, 2, 8), bias=attention_bias(attn_mask=torch.zeros(
        2, 2, dtype=torch.bool)))
    assert torch.isfinite(out).all()
