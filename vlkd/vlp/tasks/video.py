"""Video tasks: HERO's frame order modelling."""
from typing import Dict

from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.encoders import FrameSequenceEncoder
from vlkd.vlp.objectives import FrameOrderModelingLoss, shuffle_frames
from vlkd.vlp.views import VisualView
from .base import PretrainingStep, PretrainingTask


@MODELS.register_module()
class FrameOrderTask(PretrainingTask):
    """FOM: a fraction of every video's per-frame features is shuffled before the temporal
    position embeddings, the frames are fused with the caption (``with_text``) or read
    alone, and each shuffled frame's original position is classified.

    The per-frame features come from the step's unshuffled video encoding, so the image
    encoder runs once per frame for all tasks.

    Args:
        shuffle_ratio: fraction of each video's real frames shuffled (HERO: 0.15; at least
            2 frames).
        with_text: fuse the shuffled frames with the caption first.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, shuffle_ratio: float = 0.15, with_text: bool = True,
                 weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        encoder = getattr(backbone, 'image_encoder', None)
        if not isinstance(encoder, FrameSequenceEncoder):
            raise ValueError('Frame order modelling needs a FrameSequenceEncoder as the '
                             f'image encoder, got {type(encoder).__name__}.')
        width = backbone.fusion_width if with_text else backbone.image_width
        if width is None:
            raise ValueError('FOM with_text=True needs a fusion module.')
        self.shuffle_ratio = shuffle_ratio
        self.with_text = with_text
        self.loss = FrameOrderModelingLoss(width, encoder.max_frames)

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        encoder = step.backbone.image_encoder
        encoded = step.image.encoded
        frames, targets = shuffle_frames(encoded.features, self.shuffle_ratio, encoded.mask)
        shuffled = encoder.add_positions(frames, encoded.mask)
        if self.with_text:
            view = VisualView(step.backbone, step.image.inputs, encoded=shuffled)
            hidden = step.backbone.fuse(view, step.text).image_tokens
        else:
            hidden = shuffled.tokens
        return dict(loss=self.loss(hidden, targets, encoded.mask))
