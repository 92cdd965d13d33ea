"""MoMETransformer (VLMo): expert routing checked by a forward written here from the
module's parts, by perturbing one expert at a time, and padding invariance."""
import pytest
import torch

from vlkd.registry import MODELS

DEPTH, VL = 3, 1


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='MoMETransformer', image_size=16, patch_size=8, vocab_size=40,
               max_text_length=8, width=16, depth=DEPTH, num_heads=2, mlp_ratio=2.0,
               num_vl_layers=VL)
    return MODELS.build({**cfg, **kwargs}).eval()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 16, 16, generator=g), torch.randint(1, 40, (2, 5), generator=g)


def manual_forward(model, x, experts_per_layer, key_mask=None):
    """Shared attention then, per layer, the named expert on each (start, end) span."""
    bias = None
    if key_mask is not None:
        bias = torch.zeros(key_mask.shape).masked_fill(~key_mask, torch.finfo(x.dtype).min)
        bias = bias[:, None, None]
    for block, spans in zip(model.blocks, experts_per_layer):
        x = x + block.attention(block.norm(x), bias=bias)
        out = x.clone()
        for name, start, end in spans:
            out[:, start:end] = x[:, start:end] + block.experts[name](x[:, start:end])
        x = out
    return model.norm(x)


def test_routing_matches_a_manual_forward():
    model = build()
    images, ids = inputs()
    image_x = model.image_embed(images)
    text_x = model.text_embed(ids)
    n_img, n_txt = image_x.shape[1], text_x.shape[1]
    torch.testing.assert_close(
        model.encode_image(images).tokens,
        manual_forward(model, image_x, [[('vision', 0, n_img)]] * DEPTH))
    torch.testing.assert_close(
        model.encode_text(ids).tokens,
        manual_forward(model, text_x, [[('language', 0, n_txt)]] * DEPTH))
    total = n_txt + n_img
    spans = [[('language', 0, n_txt), ('vision', n_txt, total)]] * (DEPTH - VL) + \
        [[('vision_language', 0, total)]] * VL
    fused = model.fuse(images, ids)
    expected = manual_forward(model, torch.cat([text_x, image_x], 1), spans)
    torch.testing.assert_close(torch.cat([fused.text_tokens, fused.image_tokens], 1), expected)
    torch.testing.assert_close(fused.cls, fused.text_tokens[:, 0])


def perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


@pytest.mark.parametrize('expert, layers, changes', [
    ('language', range(DEPTH), {'image': False, 'text': True, 'fuse': True}),
    ('vision', range(DEPTH), {'image': True, 'text': False, 'fuse': True}),
    ('vision_language', [DEPTH - 1], {'image': False, 'text': False, 'fuse': True}),
    # the top layer's V-FFN / L-FFN are not used in fusion mode (VL-FFN is)
    ('vision', [DEPTH - 1], {'image': True, 'text': False, 'fuse': False}),
    ('language', [DEPTH - 1], {'image': False, 'text': True, 'fuse': False}),
])
def test_each_expert_serves_only_its_inputs(expert, layers, changes):
    model = build()
    images, ids = inputs()

    def outputs():
        fused = model.fuse(images, ids)
        return dict(image=model.encode_image(images).tokens, text=model.encode_text(ids).tokens,
                    fuse=torch.cat([fused.text_tokens, fused.image_tokens], 1))

    before = outputs()
    for i in layers:
        perturb(model.blocks[i].experts[expert])
    after = outputs()
    for mode, changed in changes.items():
        assert (not torch.allclose(after[mode], before[mode])) == changed, mode


def test_only_the_top_layers_have_a_vl_expert():
    model = build(depth=4, num_vl_layers=2)
    assert ['vision_language' in b.experts for b in model.blocks] == [False, False, True, True]
    with pytest.raises(ValueError, match='num_vl_layers'):
        build(num_vl_layers=0)


def test_text_padding_invariance_in_both_modes():
    model = build()
    images, ids = inputs()
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[True] * 5 + [False] * 3] * 2)
    torch.testing.assert_close(model.encode_text(padded, mask).tokens[:, :5],
                               model.encode_text(ids).tokens, atol=1e-5, rtol=1e-5)
    fused, fused_padded = model.fuse(images, ids), model.fuse(images, padded, mask)
    torch.testing.assert_close(fused_padded.text_tokens[:, :5], fused.text_tokens, atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(fused_padded.image_tokens, fused.image_tokens, atol=1e-5,
                               rtol=1e-5)


def test_masked_patches_and_dispatch():
    model = build(mask_token=True)
    images, ids = inputs()
    patch_mask = torch.tensor([[True, False, False, False]] * 2)
    changed = images.clone()
    changed[..., :8, :8] += torch.randn(2, 3, 8, 8)  # inside the masked first patch
    torch.testing.assert_close(model.encode_image(changed, patch_mask).tokens,
                               model.encode_image(images, patch_mask).tokens)
    torch.testing.assert_close(model(images=images).tokens, model.encode_image(images).tokens)
    torch.testing.assert_close(model(input_ids=ids).tokens, model.encode_text(ids).tokens)
    torch.testing.assert_close(model(images, ids).cls, model.fuse(images, ids).cls)
    with pytest.raises(ValueError, match='Give images, input_ids or both'):
        model()
