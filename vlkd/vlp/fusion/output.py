"""The output contract shared by the fusion modules of :mod:`vlkd.vlp.fusion`."""
from dataclasses import dataclass
from typing import Optional

from torch import Tensor


@dataclass
class FusionOutput:
    """What a fusion module returns.

    text_tokens: (B, Lt, D) fused text tokens, aligned with the input text tokens (MLM,
        PrefixLM and word-region alignment read them).
    text_mask: (B, Lt) bool, True = valid.
    cls: (B, Dc) the feature an image-text matching head classifies: the fused text [CLS]
        (``text_tokens[:, 0]``), or for two-stream co-attention the concatenation
        [CLS_T; CLS_V] (Dc = 2D).
    image_tokens: (B, Lv, D) fused visual tokens, aligned with the input visual tokens (masked
        vision modelling); None when only the text stream is updated (ALBEF-style fusion).
    image_mask: (B, Lv) bool or None.
    """

    text_tokens: Tensor
    text_mask: Tensor
    cls: Tensor
    image_tokens: Optional[Tensor] = None
    image_mask: Optional[Tensor] = None
