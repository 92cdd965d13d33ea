"""Frame order modelling (HERO's FOM): put shuffled video frames back in order.

:func:`shuffle_frames` picks a fraction of each video's real frames and permutes them
among their own positions (a uniform random permutation); the other frames stay. The
model encodes the shuffled sequence (with the subtitles), and
:class:`FrameOrderModelingLoss` classifies, for each shuffled position ``p``, the original
position of the frame now sitting there:

    L = mean over shuffled positions (b, p) of -log softmax(head(h_bp))[perm_b(p)],

with classes restricted to the video's real frame positions.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .heads import PredictionHead
from .mlm import IGNORE_INDEX
from .mvm import mask_visual_tokens


def shuffle_frames(frames: Tensor, shuffle_ratio: float = 0.15,
                   frame_mask: Optional[Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """Shuffle ``max(2, round(shuffle_ratio * n_b))`` of the ``n_b`` real frames of every
    video among their positions (no frame of a video with fewer than 2 real frames).

    Args:
        frames: (B, F, D) frame features.
        shuffle_ratio: fraction of the real frames to shuffle, in (0, 1].
        frame_mask: (B, F), 1 / True on real frames (default: all real).
        generator: random generator on the device of ``frames``.

    Returns:
        ``(shuffled, targets)``: (B, F, D) frames, ``shuffled[b, p] = frames[b, targets[b, p]]``
        at shuffled positions; (B, F) long targets, the original position of the frame at
        each shuffled position and ``-100`` elsewhere.
    """
    if frames.dim() != 3:
        raise ValueError(f'frames must be (B, F, D), got {tuple(frames.shape)}')
    batch, length = frames.shape[:2]
    if frame_mask is None:
        frame_mask = torch.ones(batch, length, dtype=torch.bool, device=frames.device)
    elif frame_mask.shape != (batch, length):
        raise ValueError(f'frame_mask must be (B, F) = ({batch}, {length}), got '
                         f'{tuple(frame_mask.shape)}')
    picked = mask_visual_tokens(frame_mask, shuffle_ratio, generator, min_count=2)
    picked &= frame_mask.bool().sum(dim=1, keepdim=True) >= 2
    position = torch.arange(length, device=frames.device).expand(batch, length)
    # slots: picked positions in increasing order, then the others in increasing order;
    # sources: the picked positions in random order, then the others in the same order.
    slots = torch.where(picked, position, position + length).argsort(dim=1)
    draws = torch.rand(batch, length, generator=generator, device=frames.device)
    sources = torch.where(picked, draws, (position + 1).to(draws.dtype)).argsort(dim=1)
    permutation = torch.empty_like(position).scatter_(1, slots, sources)
    shuffled = frames.gather(1, permutation[..., None].expand_as(frames))
    targets = torch.where(picked, permutation, torch.full_like(permutation, IGNORE_INDEX))
    return shuffled, targets


@MODELS.register_module()
class FrameOrderModelingLoss(nn.Module):
    """Cross-entropy of each shuffled frame's original position.

    Args:
        hidden_dim: width H of the encoder outputs at frame positions.
        max_frames: most frames per video (the head's number of position classes).
        loss_weight: factor applied to the loss.
    """

    def __init__(self, hidden_dim: int, max_frames: int, loss_weight: float = 1.0):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.max_frames = max_frames
        self.loss_weight = loss_weight
        self.head = PredictionHead(hidden_dim, max_frames)

    def forward(self, hidden_states: Tensor, targets: Tensor,
                frame_mask: Optional[Tensor] = None) -> Tensor:
        """Mean cross-entropy (scalar) over the shuffled positions; 0 if there are none.

        Args:
            hidden_states: (B, F, H) outputs at the F frame positions, F <= max_frames.
            targets: (B, F) from :func:`shuffle_frames`.
            frame_mask: (B, F) 1 / True on real frames: padded positions are not classes.
        """
        if (hidden_states.dim() != 3 or hidden_states.shape[-1] != self.hidden_dim
                or hidden_states.shape[1] > self.max_frames):
            raise ValueError(f'hidden_states must be (B, F, {self.hidden_dim}) with F <= '
                             f'{self.max_frames}, got {tuple(hidden_states.shape)}')
        length = hidden_states.shape[1]
        if targets.shape != hidden_states.shape[:2]:
            raise ValueError(f'targets must be (B, F) = {tuple(hidden_states.shape[:2])}, got '
                             f'{tuple(targets.shape)}')
        shuffled = targets != IGNORE_INDEX
        if not shuffled.any():
            return hidden_states.sum() * 0.0
        logits = self.head(hidden_states[shuffled])[:, :length]
        if frame_mask is not None:
            if frame_mask.shape != targets.shape:
                raise ValueError(f'frame_mask must be (B, F) = {tuple(targets.shape)}, got '
                                 f'{tuple(frame_mask.shape)}')
            sample = shuffled.nonzero()[:, 0]
            logits = logits.masked_fill(~frame_mask.bool()[sample], -torch.inf)
        return self.loss_weight * F.cross_entropy(logits, targets[shuffled])
