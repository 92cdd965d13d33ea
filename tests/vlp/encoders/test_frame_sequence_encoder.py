"""FrameSequenceEncoder: per-frame features against the image encoder run frame by frame,
tokens against LayerNorm(W c_t + p_t), padded videos against unpadded runs, short videos."""
import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS

VIT = dict(type='ViTPatchEncoder',
           vision_cfg=dict(image_size=16, patch_size=8, width=16, layers=1, head_width=8))


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='FrameSequenceEncoder', image_encoder=VIT, out_dim=12, max_frames=5)
    return MODELS.build({**cfg, **kwargs}).eval()


def frames(batch, length, seed=0):
    return torch.randn(batch, length, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_tokens_from_per_frame_features():
    encoder = build()
    video = frames(2, 4)
    out = encoder(video, num_frames=torch.tensor([4, 2]))
    assert out.tokens.shape == (2, 4, 12)
    assert out.mask.tolist() == [[True] * 4, [True, True, False, False]]
    for b, count in enumerate([4, 2]):
        for t in range(count):
            c = encoder.image_encoder(video[b, t][None]).cls[0]
            torch.testing.assert_close(out.features[b, t], c)
            expected = F.layer_norm(encoder.projection(c) + encoder.position_embedding[t], (12,),
                                    encoder.norm.weight, encoder.norm.bias)
            torch.testing.assert_close(out.tokens[b, t], expected)
    torch.testing.assert_close(out.cls[1], out.tokens[1, :2].mean(0))


def test_padding_is_neither_encoded_nor_seen():
    encoder = build()
    short = frames(1, 2, seed=1)
    padded = torch.cat([short, torch.full((1, 3, 3, 16, 16), float('nan'))], dim=1)
    out = encoder(padded, num_frames=torch.tensor([2]))
    alone = encoder(short)
    assert torch.isfinite(out.tokens[0, :2]).all()
    torch.testing.assert_close(out.tokens[0, :2], alone.tokens[0])
    torch.testing.assert_close(out.cls, alone.cls)


def test_short_and_long_videos_are_rejected():
    encoder = build(min_frames=3)
    with pytest.raises(ValueError, match='Video 1 of the batch has 2 frames, fewer than '
                                         'min_frames=3'):
        encoder(frames(2, 4), num_frames=torch.tensor([4, 2]))
    with pytest.raises(ValueError, match='exceed max_frames=5'):
        encoder(frames(1, 6))
    with pytest.raises(ValueError, match=r'\(B, T, C, H, W\)'):
        encoder(torch.zeros(2, 3, 16, 16))


def test_frozen_image_encoder_from_its_config():
    encoder = build(image_encoder=dict(VIT, frozen=True)).train()
    encoder(frames(1, 3)).tokens.sum().backward()
    assert all(p.grad is None for p in encoder.image_encoder.parameters())
    assert encoder.position_embedding.grad is not None
