"""Inputs of one modality, encoded on first use: what pretraining tasks hand to a backbone.

A :class:`VisualView` holds the visual inputs of a batch (images (B, 3, S, S), a
:class:`~vlkd.vlp.encoders.RegionBatch` or a :class:`VideoBatch`) and optionally which of
their units (patches, regions) are masked; a :class:`TextView` holds token ids and their
padding mask. ``view.encoded`` runs the backbone's unimodal encoder once and keeps the
result, so several objectives of one training step share a forward pass.
``view.select(index)`` takes rows (the pairs of image-text matching): the inputs, and the
encoder output too when it was already computed, so selecting never re-encodes.
"""
from dataclasses import dataclass, fields
from typing import Optional, Union

from torch import Tensor

from vlkd.vlp.encoders import EncoderOutput, RegionBatch
from vlkd.vlp.objectives.distributed import gather_padded


@dataclass
class VideoBatch:
    """Videos padded at the end to T frames: frames (B, T, 3, H, W), normalised as the frame
    encoder takes them; num_frames (B,) real frames per video."""

    frames: Tensor
    num_frames: Tensor

    def __post_init__(self):
        if self.frames.dim() != 5 or self.num_frames.shape != self.frames.shape[:1]:
            raise ValueError(f'VideoBatch needs frames (B, T, 3, H, W) and num_frames (B,), got '
                             f'{tuple(self.frames.shape)} and {tuple(self.num_frames.shape)}.')

    def __len__(self) -> int:
        return len(self.frames)


Visual = Union[Tensor, RegionBatch, VideoBatch]


def visual_batch_size(visual: Visual) -> int:
    """Number of samples B of visual inputs."""
    return len(visual.features) if isinstance(visual, RegionBatch) else len(visual)


def select_visual(visual: Visual, index: Tensor) -> Visual:
    """Rows ``index`` (M,) of visual inputs, of the same kind."""
    if isinstance(visual, RegionBatch):
        return RegionBatch(*(None if t is None else t[index] for t in
                             (visual.features, visual.boxes, visual.image_sizes, visual.mask,
                              visual.class_probs)))
    if isinstance(visual, VideoBatch):
        return VideoBatch(visual.frames[index], visual.num_frames[index])
    return visual[index]


def select_output(output: EncoderOutput, index: Tensor) -> EncoderOutput:
    """Rows ``index`` (M,) of every field of an encoder output."""
    return EncoderOutput(**{f.name: None if getattr(output, f.name) is None
                            else getattr(output, f.name)[index] for f in fields(output)})


def gather_visual(visual: Visual) -> Visual:
    """Every process's visual inputs, concatenated in rank order (regions and frames padded
    to the longest list of all processes)."""
    if isinstance(visual, RegionBatch):
        return RegionBatch(gather_padded(visual.features), gather_padded(visual.boxes),
                           gather_padded(visual.image_sizes, dim=0),
                           gather_padded(visual.mask, value=False),
                           None if visual.class_probs is None
                           else gather_padded(visual.class_probs))
    if isinstance(visual, VideoBatch):
        return VideoBatch(gather_padded(visual.frames), gather_padded(visual.num_frames, dim=0))
    return gather_padded(visual, dim=0)


# the fields of an EncoderOutput that are one row per sample; the others are (B, L, ...)
_PER_SAMPLE_FIELDS = ('cls', 'embedding')


def gather_output(output: EncoderOutput) -> EncoderOutput:
    """Every process's encoder output, concatenated in rank order with gradient, token
    sequences padded to the longest of all processes (padding masked out)."""
    gathered = {}
    for f in fields(output):
        value = getattr(output, f.name)
        if value is None:
            gathered[f.name] = None
        elif f.name in _PER_SAMPLE_FIELDS:
            gathered[f.name] = gather_padded(value, dim=0)
        else:
            gathered[f.name] = gather_padded(value, value=False if f.name == 'mask' else 0)
    return EncoderOutput(**gathered)


class VisualView:
    """Visual inputs, optionally with masked units, encoded by ``backbone`` on first use.

    Args:
        backbone: a :mod:`vlkd.vlp.backbone` backbone (``encode_image``).
        inputs: images (B, 3, S, S), a RegionBatch or a VideoBatch.
        unit_mask: (B, N) bool, True on the patches / regions to mask (None: none).
    """

    def __init__(self, backbone, inputs: Visual, unit_mask: Optional[Tensor] = None,
                 encoded: Optional[EncoderOutput] = None):
        self.backbone = backbone
        self.inputs = inputs
        self.unit_mask = unit_mask
        self._encoded = encoded

    def __len__(self) -> int:
        return visual_batch_size(self.inputs)

    @property
    def encoded(self) -> EncoderOutput:
        """The backbone's unimodal encoding (computed once)."""
        if self._encoded is None:
            self._encoded = self.backbone.encode_image(self.inputs, self.unit_mask)
        return self._encoded

    def select(self, index: Tensor) -> 'VisualView':
        """The view of rows ``index`` (M,)."""
        return VisualView(self.backbone, select_visual(self.inputs, index),
                          None if self.unit_mask is None else self.unit_mask[index],
                          None if self._encoded is None else select_output(self._encoded, index))

    def masked(self, unit_mask: Tensor) -> 'VisualView':
        """The same inputs with ``unit_mask`` (B, N) units masked (encoded afresh)."""
        return VisualView(self.backbone, self.inputs, unit_mask)

    def gathered(self) -> 'VisualView':
        """The view of every process's rows in rank order (this process's alone without
        torch.distributed); the encoding is gathered with its gradient, never recomputed."""
        return VisualView(self.backbone, gather_visual(self.inputs),
                          None if self.unit_mask is None
                          else gather_padded(self.unit_mask, value=False),
                          gather_output(self.encoded))


class TextView:
    """Token ids (B, L) with their padding mask (B, L) bool, encoded by ``backbone`` on
    first use."""

    def __init__(self, backbone, input_ids: Tensor, attention_mask: Tensor,
                 encoded: Optional[EncoderOutput] = None):
        if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
            raise ValueError(f'input_ids and attention_mask must both be (B, L), got '
                             f'{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}.')
        self.backbone = backbone
        self.input_ids = input_ids
        self.attention_mask = attention_mask.bool()
        self._encoded = encoded

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def encoded(self) -> EncoderOutput:
        """The backbone's unimodal text encoding (computed once)."""
        if self._encoded is None:
            self._encoded = self.backbone.encode_text(self.input_ids, self.attention_mask)
        return self._encoded

    def select(self, index: Tensor) -> 'TextView':
        """The view of rows ``index`` (M,)."""
        return TextView(self.backbone, self.input_ids[index], self.attention_mask[index],
                        None if self._encoded is None else select_output(self._encoded, index))

    def with_ids(self, input_ids: Tensor) -> 'TextView':
        """Other ids (e.g. masked) with the same padding (encoded afresh)."""
        return TextView(self.backbone, input_ids, self.attention_mask)

    def gathered(self) -> 'TextView':
        """The view of every process's rows in rank order, padded to the longest caption
        of all processes; the encoding is gathered with its gradient, never recomputed."""
        return TextView(self.backbone, gather_padded(self.input_ids),
                        gather_padded(self.attention_mask, value=False),
                        gather_output(self.encoded))


__all__ = ['VideoBatch', 'VisualView', 'TextView', 'select_visual', 'select_output',
           'visual_batch_size', 'gather_visual', 'gather_output']
