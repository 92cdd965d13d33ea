"""CLIPTextEncoder against open_clip's CLIP.encode_text with the same weights (loaded from a
whole-model file and from a vlkd CLIPPretrainer-style checkpoint)."""
import pytest
import torch

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import build_open_clip_model
from vlkd.vlp.encoders import CLIPTextEncoder

CAPTIONS = ['a red circle', 'two blue squares above a small star']


@pytest.fixture
def clip_and_file(tmp_path, tiny_clip_cfg):
    torch.manual_seed(0)
    clip = build_open_clip_model(model_cfg=tiny_clip_cfg).eval()
    path = tmp_path / 'clip.pt'
    torch.save(clip.state_dict(), path)
    return clip, path


def test_matches_open_clip_encode_text(clip_and_file, tiny_clip_cfg):
    clip, path = clip_and_file
    encoder = MODELS.build(dict(type='CLIPTextEncoder', text_cfg=tiny_clip_cfg['text_cfg'],
                                embed_dim=tiny_clip_cfg['embed_dim'], pretrained=str(path)))
    tokens = encoder.tokenize(CAPTIONS)
    out = encoder(**tokens)
    with torch.no_grad():
        expected = clip.encode_text(tokens['input_ids'])
    torch.testing.assert_close(out.embedding, expected)
    assert out.tokens.shape == (2, 16, 32) and out.cls.shape == (2, 32)
    # cls is the end-of-text token's feature, the embedding its projection
    eot = tokens['input_ids'].argmax(-1)
    torch.testing.assert_close(out.cls, out.tokens[torch.arange(2), eot])
    torch.testing.assert_close(out.cls @ clip.text_projection, expected)
    assert torch.equal(out.mask, tokens['input_ids'] != 0)


def test_loads_the_text_tower_of_a_vlkd_checkpoint(clip_and_file, tmp_path, tiny_clip_cfg):
    clip, _ = clip_and_file
    path = tmp_path / 'iter_10.pth'
    torch.save({'state_dict': {'clip.' + k: v for k, v in clip.state_dict().items()},
                'meta': {}}, path)
    encoder = CLIPTextEncoder(tiny_clip_cfg['text_cfg'], tiny_clip_cfg['embed_dim'],
                              pretrained=str(path), prefix='clip.', frozen=True)
    assert not any(p.requires_grad for p in encoder.parameters())
    out = encoder.encode(CAPTIONS)
    with torch.no_grad():
        expected = clip.encode_text(encoder.tokenize(CAPTIONS)['input_ids'])
    torch.testing.assert_close(out.embedding, expected)
    with pytest.raises(ValueError, match="No weights with prefix 'text.'"):
        CLIPTextEncoder(tiny_clip_cfg['text_cfg'], 32, pretrained=str(path), prefix='text.')


def test_bad_inputs(tiny_clip_cfg):
    encoder = CLIPTextEncoder(tiny_clip_cfg['text_cfg'], 32)
    with pytest.raises(ValueError, match='Caption 0 is empty'):
        encoder.encode([' '])
    with pytest.raises(ValueError, match='L <= 16'):
        encoder(torch.ones(1, 20, dtype=torch.long))
