"""Video as a sequence of frame features: any image encoder per frame, plus learned
temporal position embeddings (HERO-style frame tokens)."""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS
from .output import EncoderOutput


@MODELS.register_module()
class FrameSequenceEncoder(nn.Module):
    """Frame tokens ``LayerNorm(W c_t + p_t)``: ``c_t`` the image encoder's ``cls`` feature
    of frame ``t``, ``p_t`` a learned embedding of slot ``t``.

    Videos of a batch are padded at the end to T frames; the mask marks real frames, and
    padded frames are never run through the image encoder. ``features`` are the per-frame
    ``cls`` features (B, T, C); ``cls`` the mean of the valid frame tokens.
    :meth:`encode_frames` and :meth:`add_positions` are the two halves of ``forward``, for
    objectives that reorder frames in between (frame order modelling).

    Args:
        image_encoder: config of any registered image encoder (e.g. ``ViTPatchEncoder``,
            ``CNNGridEncoder``); its own ``frozen`` option freezes it.
        out_dim: token width D.
        max_frames: number of temporal position embeddings (longest video).
        min_frames: shorter videos are an error.
    """

    def __init__(self, image_encoder: dict, out_dim: int, max_frames: int = 8,
                 min_frames: int = 1):
        super().__init__()
        if not 1 <= min_frames <= max_frames:
            raise ValueError(f'Need 1 <= min_frames <= max_frames, got {min_frames}, '
                             f'{max_frames}.')
        self.image_encoder = MODELS.build(image_encoder)
        self.max_frames, self.min_frames = max_frames, min_frames
        self.width = out_dim
        self.projection = nn.Linear(self.image_encoder.width, out_dim)
        self.position_embedding = nn.Parameter(torch.randn(max_frames, out_dim) * 0.02)
        self.norm = nn.LayerNorm(out_dim)

    def frame_mask(self, frames: Tensor, num_frames: Optional[Tensor] = None) -> Tensor:
        """(B, T) bool mask of real frames; ``num_frames`` (B,) counts, default all T.
        Raises if a video is shorter than ``min_frames`` or T exceeds ``max_frames``."""
        if frames.dim() != 5:
            raise ValueError(f'frames must be (B, T, C, H, W), got {tuple(frames.shape)}.')
        batch, length = frames.shape[:2]
        if length > self.max_frames:
            raise ValueError(f'Videos of {length} frames exceed max_frames={self.max_frames}.')
        if num_frames is None:
            num_frames = torch.full((batch,), length, device=frames.device)
        num_frames = torch.as_tensor(num_frames, device=frames.device)
        if num_frames.shape != (batch,) or (num_frames > length).any():
            raise ValueError(f'num_frames must be (B,) = ({batch},) counts <= T = {length}, '
                             f'got {num_frames.tolist()}.')
        short = (num_frames < self.min_frames).nonzero().flatten().tolist()
        if short:
            raise ValueError(f'Video {short[0]} of the batch has {int(num_frames[short[0]])} '
                             f'frames, fewer than min_frames={self.min_frames}.')
        return torch.arange(length, device=frames.device) < num_frames[:, None]

    def encode_frames(self, frames: Tensor, mask: Tensor) -> Tensor:
        """Per-frame features (B, T, C) of the frames where ``mask`` is True (zeros else)."""
        valid = self.image_encoder(frames[mask]).cls
        features = valid.new_zeros(mask.shape + valid.shape[-1:])
        features[mask] = valid
        return features

    def add_positions(self, features: Tensor, mask: Tensor) -> EncoderOutput:
        """Frame features (B, T, C) in slot order -> frame tokens."""
        tokens = self.norm(self.projection(features)
                           + self.position_embedding[:features.shape[1]])
        weights = mask.to(tokens.dtype)[..., None]
        cls = (tokens * weights).sum(1) / weights.sum(1)
        return EncoderOutput(tokens=tokens, mask=mask, cls=cls, features=features)

    def forward(self, frames: Tensor, num_frames: Optional[Tensor] = None) -> EncoderOutput:
        """Frames (B, T, 3, H, W) as the image encoder takes them, videos padded at the end;
        ``num_frames`` (B,) real frames per video (default T)."""
        mask = self.frame_mask(frames, num_frames)
        return self.add_positions(self.encode_frames(frames, mask), mask)
