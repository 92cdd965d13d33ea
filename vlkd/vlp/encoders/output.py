"""The output contract shared by every encoder of :mod:`vlkd.vlp.encoders`."""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class EncoderOutput:
    """What an image, region, video or text encoder returns.

    Always set:
        tokens: (B, L, D) token features that fusion modules attend over. When the encoder
            has a summary token (ViT [CLS], BERT [CLS], a region encoder's image token) it is
            ``tokens[:, 0]``.
        mask: (B, L) bool, True where a token is valid, False where it is padding.
        cls: (B, D) one feature per sample: the summary token's output, the EOT token of a
            CLIP text tower, or the mean of the valid tokens for encoders without one.

    Set by some encoders (None otherwise):
        embedding: (B, E) the tower's projected embedding for contrastive objectives (CLIP
            towers: open_clip's ``encode_image`` / ``encode_text`` output, unnormalised).
        input_ids: (B, L) token ids of a text encoder, aligned with ``tokens``.
        features: (B, L, F) the raw input features the tokens were projected from (region
            and frame encoders): targets of masked feature regression.
        boxes: (B, L, 4) region boxes, x1 y1 x2 y2 in input-image pixels.
        class_probs: (B, L, K) the detector's class distribution of each region.
    """

    tokens: Tensor
    mask: Tensor
    cls: Tensor
    embedding: Optional[Tensor] = None
    input_ids: Optional[Tensor] = None
    features: Optional[Tensor] = None
    boxes: Optional[Tensor] = None
    class_probs: Optional[Tensor] = None

    def __post_init__(self):
        if self.tokens.dim() != 3 or self.mask.shape != self.tokens.shape[:2] \
                or self.mask.dtype != torch.bool:
            raise ValueError(f'EncoderOutput needs tokens (B, L, D) and a bool mask (B, L); '
                             f'got {tuple(self.tokens.shape)} and {tuple(self.mask.shape)} '
                             f'{self.mask.dtype}.')
        batch, length = self.tokens.shape[:2]
        if self.cls.shape != (batch, self.tokens.shape[2]):
            raise ValueError(f'EncoderOutput cls must be (B, D) = ({batch}, '
                             f'{self.tokens.shape[2]}), got {tuple(self.cls.shape)}.')
        if self.embedding is not None and self.embedding.shape[0] != batch:
            raise ValueError(f'EncoderOutput.embedding must be (B, E) with B = {batch}, got '
                             f'{tuple(self.embedding.shape)}.')
        for name in ('input_ids', 'features', 'boxes', 'class_probs'):
            value = getattr(self, name)
            if value is not None and tuple(value.shape[:2]) != (batch, length):
                raise ValueError(f'EncoderOutput.{name} must start with (B, L) = '
                                 f'({batch}, {length}), got {tuple(value.shape)}.')
