"""CrossAttentionFusion (ALBEF) and CoAttentionFusion (ViLBERT): padding invariance, masked
tokens ignored, which stream sees which, the [CLS] outputs, and one ALBEF layer against a
forward written here from the formulas."""
import math

import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS


def build(kind, **kwargs):
    torch.manual_seed(0)
    cfg = dict(type=kind, width=16, depth=2, num_heads=2, mlp_ratio=2.0)
    return MODELS.build({**cfg, **kwargs}).eval()


def streams(b=1, lt=3, lv=4, dt=16, dv=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, lt, dt, generator=g), torch.randn(b, lv, dv, generator=g)


def pad(x, n):
    return torch.cat([x, torch.randn(x.shape[0], n, x.shape[2])], 1), \
        torch.tensor([[True] * x.shape[1] + [False] * n] * x.shape[0])


def test_albef_layer_against_the_formula():
    fusion = build('CrossAttentionFusion', depth=1, image_dim=24)
    text, image = streams(b=2, dv=24)
    image_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    out = fusion(text, None, image, image_mask)
    p = {k: v.double() for k, v in fusion.state_dict().items()}

    def lin(v, name):
        return v @ p[name + '.weight'].T + p[name + '.bias']

    def ln(v, name):
        return F.layer_norm(v, (16,), p[name + '.weight'], p[name + '.bias'])

    def attend(x, context, name, key_mask):
        q, k, v = (lin(src, f'{name}.{n}').unflatten(-1, (2, 8)).transpose(1, 2)
                   for src, n in ((x, 'query'), (context, 'key'), (context, 'value')))
        scores = (q @ k.transpose(-1, -2) / math.sqrt(8)).masked_fill(
            ~key_mask[:, None, None], float('-inf'))
        return lin((scores.softmax(-1) @ v).transpose(1, 2).flatten(2), f'{name}.out')

    x, c = text.double(), image.double()
    x = x + attend(ln(x, 'blocks.0.norm_self'), ln(x, 'blocks.0.norm_self'),
                   'blocks.0.self_attention', torch.ones(2, 3, dtype=torch.bool))
    h = ln(x, 'blocks.0.norm_cross')
    x = x + attend(h, c, 'blocks.0.cross_attention', image_mask)
    x = x + lin(F.gelu(lin(ln(x, 'blocks.0.norm_ffn'), 'blocks.0.ffn.net.0')),
                'blocks.0.ffn.net.3')
    expected = ln(x, 'norm')
    torch.testing.assert_close(out.text_tokens.double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.cls, out.text_tokens[:, 0])
    assert out.image_tokens is None


@pytest.mark.parametrize('kind', ['CrossAttentionFusion', 'CoAttentionFusion'])
def test_padding_invariance(kind):
    fusion = build(kind, text_dim=8, image_dim=12)
    text, image = streams(dt=8, dv=12)
    alone = fusion(text, None, image, None)
    (pad_text, text_mask), (pad_image, image_mask) = pad(text, 2), pad(image, 3)
    padded = fusion(pad_text, text_mask, pad_image, image_mask)
    torch.testing.assert_close(padded.text_tokens[:, :3], alone.text_tokens, atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(padded.cls, alone.cls, atol=1e-5, rtol=1e-5)
    if kind == 'CoAttentionFusion':
        torch.testing.assert_close(padded.image_tokens[:, :4], alone.image_tokens, atol=1e-5,
                                   rtol=1e-5)
    # a masked-out token is ignored, an unmasked one is attended to
    pad_image[0, 5] += torch.randn(12)
    torch.testing.assert_close(fusion(pad_text, text_mask, pad_image, image_mask).text_tokens,
                               padded.text_tokens)
    pad_image[0, 2] += torch.randn(12)
    assert not torch.allclose(fusion(pad_text, text_mask, pad_image, image_mask)
                              .text_tokens[:, :3], padded.text_tokens[:, :3])


def test_co_attention_streams_see_each_other():
    fusion = build('CoAttentionFusion')
    text, image = streams(b=2)
    out = fusion(text, None, image, None)
    assert out.cls.shape == (2, 32)
    torch.testing.assert_close(out.cls, torch.cat([out.text_tokens[:, 0],
                                                   out.image_tokens[:, 0]], -1))
    other_text = text.clone()
    other_text[:, 1] += torch.randn(16)
    changed = fusion(other_text, None, image, None)
    assert not torch.allclose(changed.image_tokens, out.image_tokens)  # text -> image
    other_image = image.clone()
    other_image[:, 1] += torch.randn(16)
    changed = fusion(text, None, other_image, None)
    assert not torch.allclose(changed.text_tokens, out.text_tokens)  # image -> text


def test_albef_output_shapes_and_bad_input():
    fusion = build('CrossAttentionFusion')
    text, image = streams(b=2)
    out = fusion(text, None, image, None)
    assert out.text_tokens.shape == (2, 3, 16) and out.text_mask.all()
    with pytest.raises(ValueError, match=r'image tokens must be \(B, L, D\)'):
        fusion(text, None, image[0], None)
