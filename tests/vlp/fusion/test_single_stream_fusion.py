"""SingleStreamFusion against a forward pass written here from the formulas (float64),
padding invariance, masked tokens, and a PrefixLM prefix-causal attention mask."""
import math

import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS
from vlkd.vlp.fusion import SingleStreamFusion


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='SingleStreamFusion', width=16, depth=2, num_heads=4, mlp_ratio=2.0)
    return MODELS.build({**cfg, **kwargs}).eval()


def streams(b=2, lt=4, lv=3, dt=16, dv=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, lt, dt, generator=g), torch.randn(b, lv, dv, generator=g)


def reference(fusion, text, text_mask, image, image_mask, allowed=None):
    """Pre-LN transformer over [text + m_0; image + m_1], written out in float64."""
    p = {k: v.double() for k, v in fusion.state_dict().items()}
    x = torch.cat([text.double() + p['modality_embedding.weight'][0],
                   image.double() + p['modality_embedding.weight'][1]], 1)
    keys = torch.cat([text_mask, image_mask], 1)[:, None, :]  # (B, 1, L)
    allowed = keys if allowed is None else keys & allowed
    heads = 4
    for i in range(len(fusion.blocks)):
        pre = f'blocks.{i}.'

        def ln(v, name):
            return F.layer_norm(v, (16,), p[pre + name + '.weight'], p[pre + name + '.bias'])

        def lin(v, name):
            return v @ p[pre + name + '.weight'].T + p[pre + name + '.bias']

        h = ln(x, 'norm_self')
        q, k, v = (lin(h, f'self_attention.{n}').unflatten(-1, (heads, 4)).transpose(1, 2)
                   for n in ('query', 'key', 'value'))
        scores = q @ k.transpose(-1, -2) / math.sqrt(4)
        scores = scores.masked_fill(~allowed[:, None], float('-inf'))
        out = (scores.softmax(-1) @ v).transpose(1, 2).flatten(2)
        x = x + lin(out, 'self_attention.out')
        h = ln(x, 'norm_ffn')
        x = x + lin(F.gelu(lin(h, 'ffn.net.0')), 'ffn.net.3')
    return F.layer_norm(x, (16,), p['norm.weight'], p['norm.bias'])


def test_matches_the_reference_forward():
    fusion = build()
    text, image = streams()
    text_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    image_mask = torch.tensor([[True] * 3, [True, False, True]])
    out = fusion(text, text_mask, image, image_mask)
    expected = reference(fusion, text, text_mask, image, image_mask)
    valid = torch.cat([text_mask, image_mask], 1)
    got = torch.cat([out.text_tokens, out.image_tokens], 1)
    torch.testing.assert_close(got[valid].double(), expected[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.cls, out.text_tokens[:, 0])
    assert out.text_tokens.shape == (2, 4, 16) and out.image_tokens.shape == (2, 3, 16)


def test_padding_invariance_and_masked_tokens():
    fusion = build(text_dim=8, image_dim=12)
    text, image = streams(b=1, lt=3, lv=2, dt=8, dv=12)
    alone = fusion(text, None, image, None)
    pad_text = torch.cat([text, torch.randn(1, 2, 8)], 1)
    pad_image = torch.cat([image, torch.randn(1, 3, 12)], 1)
    text_mask = torch.tensor([[True] * 3 + [False] * 2])
    image_mask = torch.tensor([[True] * 2 + [False] * 3])
    padded = fusion(pad_text, text_mask, pad_image, image_mask)
    torch.testing.assert_close(padded.text_tokens[:, :3], alone.text_tokens, atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(padded.image_tokens[:, :2], alone.image_tokens, atol=1e-5,
                               rtol=1e-5)
    # changing a masked-out token changes nothing valid; changing a valid image token does
    pad_image[0, 4] += torch.randn(12)
    again = fusion(pad_text, text_mask, pad_image, image_mask)
    torch.testing.assert_close(again.text_tokens[:, :3], padded.text_tokens[:, :3])
    pad_image[0, 1] += torch.randn(12)
    changed = fusion(pad_text, text_mask, pad_image, image_mask)
    assert not torch.allclose(changed.text_tokens[:, :3], padded.text_tokens[:, :3])


def prefix_lm_mask(num_text, num_image, prefix):
    """PrefixLM on [text; image]: every position sees the image and the first ``prefix``
    text tokens (bidirectional); the other text tokens also see earlier text (causal)."""
    total = num_text + num_image
    allowed = torch.zeros(total, total, dtype=torch.bool)
    allowed[:, :prefix] = True
    allowed[:, num_text:] = True
    allowed[prefix:num_text, prefix:num_text] = torch.ones(num_text - prefix,
                                                           num_text - prefix).tril().bool()
    return allowed


def test_prefix_causal_attention_mask():
    fusion = build()
    text, image = streams(b=1, lt=4, lv=3)
    allowed = prefix_lm_mask(4, 3, prefix=2)
    out = fusion(text, None, image, None, attention_mask=allowed)
    expected = reference(fusion, text, torch.ones(1, 4, dtype=torch.bool), image,
                         torch.ones(1, 3, dtype=torch.bool), allowed[None])
    torch.testing.assert_close(torch.cat([out.text_tokens, out.image_tokens], 1).double(),
                               expected, atol=1e-5, rtol=1e-5)
    changed_text = text.clone()
    changed_text[0, 3] += torch.randn(16)  # last suffix token: earlier ones must not change
    changed = fusion(changed_text, None, image, None, attention_mask=allowed)
    torch.testing.assert_close(changed.text_tokens[:, :3], out.text_tokens[:, :3])
    assert not torch.allclose(changed.text_tokens[:, 3], out.text_tokens[:, 3])
    changed_text[0, 2] += torch.randn(16)  # first suffix token: the prefix must not see it
    changed = fusion(changed_text, None, image, None, attention_mask=allowed)
    torch.testing.assert_close(changed.text_tokens[:, :2], out.text_tokens[:, :2])
    torch.testing.assert_close(changed.image_tokens, out.image_tokens)
    # the same mask as an additive float mask gives the same result
    additive = torch.zeros(7, 7).masked_fill(~allowed, float('-inf'))
    torch.testing.assert_close(fusion(text, None, image, None, attention_mask=additive)
                               .text_tokens, out.text_tokens)


def test_bad_inputs():
    fusion = build()
    text, image = streams()
    with pytest.raises(ValueError, match='attention_mask must be'):
        fusion(text, None, image, None, attention_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match='text mask must be bool'):
        fusion(text, torch.ones(2, 4), image, None)
    with pytest.raises(ValueError, match='no valid image token'):
        fusion(text, None, image, torch.zeros(2, 3, dtype=torch.bool))


def test_image_first_order_with_the_prefix_lm_objective_mask():
    from vlkd.vlp.objectives.prefix_lm import prefix_lm_attention_mask
    text_first = build()
    image_first = build(image_first=True)  # same seed: same weights
    text, image = streams(b=2, lt=4, lv=3)
    text_mask = torch.tensor([[True] * 4, [True] * 3 + [False]])
    prefix = torch.tensor([1, 2])
    allowed = prefix_lm_attention_mask(prefix, text_mask, num_image_tokens=3)  # [image; text]
    out = image_first(text, text_mask, image, None, attention_mask=allowed)
    # attention has no positions: the same mask, permuted to [text; image], gives the same
    order = torch.cat([torch.arange(3, 7), torch.arange(3)])
    permuted = allowed[:, order][:, :, order]
    expected = text_first(text, text_mask, image, None, attention_mask=permuted)
    torch.testing.assert_close(out.text_tokens, expected.text_tokens)
    torch.testing.assert_close(out.image_tokens, expected.image_tokens)
    torch.testing.assert_close(out.cls, out.text_tokens[:, 0])
    # the last real text token of sample 0 is in its suffix: nothing before it sees it
    changed = text.clone()
    changed[0, 3] += torch.randn(16)
    new = image_first(changed, text_mask, image, None, attention_mask=allowed)
    torch.testing.assert_close(new.text_tokens[0, :3], out.text_tokens[0, :3])
    torch.testing.assert_close(new.image_tokens, out.image_tokens)
