"""ViTPatchEncoder against the towers' own forward passes (open_clip VisionTransformer and
CLIP.encode_image, timm forward_features / forward_head), local weights, patch masking and
freezing."""
import pytest
import timm
import torch

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import build_open_clip_model
from vlkd.vlp.encoders import ViTPatchEncoder

TIMM_KWARGS = dict(img_size=32, patch_size=8, depth=1, embed_dim=32, num_heads=2)


def images(seed=0, n=2):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_open_clip_tower_from_a_clip_file_matches_encode_image(tiny_clip_cfg, tmp_path):
    torch.manual_seed(0)
    clip = build_open_clip_model(model_cfg=tiny_clip_cfg).eval()
    torch.save(clip.state_dict(), tmp_path / 'clip.pt')
    encoder = MODELS.build(dict(type='ViTPatchEncoder', vision_cfg=tiny_clip_cfg['vision_cfg'],
                                embed_dim=tiny_clip_cfg['embed_dim'],
                                pretrained=str(tmp_path / 'clip.pt'), prefix='visual.'))
    x = images()
    out = encoder(x)
    with torch.no_grad():
        expected = clip.encode_image(x)
    torch.testing.assert_close(out.embedding, expected)
    assert out.tokens.shape == (2, 1 + 16, 32) and out.mask.all()
    assert encoder.num_patches == 16
    torch.testing.assert_close(out.cls, out.tokens[:, 0])  # 'tok' pooling


def test_timm_vit_matches_forward_features_and_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    reference = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=5,
                                  **TIMM_KWARGS).eval()
    torch.save(reference.state_dict(), tmp_path / 'vit.pth')  # with a 5-class head
    encoder = ViTPatchEncoder(timm_model='vit_tiny_patch16_224', timm_kwargs=TIMM_KWARGS,
                              pretrained=str(tmp_path / 'vit.pth')).eval()
    x = images()
    out = encoder(x)
    with torch.no_grad():
        features = reference.forward_features(x)
        pooled = reference.forward_head(features, pre_logits=True)
    torch.testing.assert_close(out.tokens, features)
    torch.testing.assert_close(out.cls, pooled)
    assert out.embedding is None and encoder.width == 32


def test_masked_patches_ignore_their_pixels(tiny_clip_cfg):
    torch.manual_seed(0)
    encoder = ViTPatchEncoder(vision_cfg=tiny_clip_cfg['vision_cfg'], mask_token=True).eval()
    torch.nn.init.normal_(encoder.mask_token)
    x = images(n=1)
    patch_mask = torch.zeros(1, 16, dtype=torch.bool)
    patch_mask[0, 5] = True  # patch (row 1, column 1): pixels 8..15 x 8..15
    changed = x.clone()
    changed[..., 8:16, 8:16] += 3.0
    masked = encoder(x, patch_mask)
    torch.testing.assert_close(encoder(changed, patch_mask).tokens, masked.tokens)
    assert not torch.allclose(encoder(changed).tokens, encoder(x).tokens)
    assert not torch.allclose(masked.tokens, encoder(x).tokens)
    torch.testing.assert_close(encoder(x, torch.zeros_like(patch_mask)).tokens,
                               encoder(x).tokens)


def test_frozen_tower_keeps_mask_token_trainable(tiny_clip_cfg):
    encoder = ViTPatchEncoder(vision_cfg=tiny_clip_cfg['vision_cfg'], mask_token=True,
                              frozen=True)
    encoder.train()
    assert not encoder.vit.training
    assert [n for n, p in encoder.named_parameters() if p.requires_grad] == ['mask_token']


def test_bad_configs_and_inputs(tiny_clip_cfg):
    with pytest.raises(ValueError, match='exactly one'):
        ViTPatchEncoder()
    with pytest.raises(ValueError, match='use CNNGridEncoder'):
        ViTPatchEncoder(vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=32))
    encoder = ViTPatchEncoder(vision_cfg=tiny_clip_cfg['vision_cfg'])
    with pytest.raises(ValueError, match=r'\(B, 3, 32, 32\)'):
        encoder(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match='mask_token=True'):
        encoder(images(), torch.zeros(2, 16, dtype=torch.bool))
