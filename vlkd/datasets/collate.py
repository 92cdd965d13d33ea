"""Collate functions for video-text and region-text batches (``collate_fn`` of a dataloader).

Image-text items need none: mmengine's default ``pseudo_collate`` keeps the (3, H, W)
images in a list for the model's ``ImgDataPreprocessor``. Videos and regions vary in
length, so these pad them and say which entries are real::

    train_dataloader = dict(..., collate_fn=dict(type='vlkd.video_text_collate'))
    train_dataloader = dict(..., collate_fn=dict(type='vlkd.region_text_collate',
                                                 max_regions=36))

Both return ``dict(inputs=dict(...), data_samples=[...])``: plain tensors in a dict, so that
the model's data preprocessor moves them to its device.
"""
from typing import Optional, Sequence

import torch

from vlkd.registry import FUNCTIONS
from vlkd.vlp.encoders.regions import RegionSet, collate_regions

__all__ = ['video_text_collate', 'region_text_collate']


def _sample_name(sample) -> str:
    for key in ('video_id', 'img_id'):
        if key in sample:
            return f'{key} {sample.get(key)}'
    return 'a sample'


@FUNCTIONS.register_module()
def video_text_collate(data_batch: Sequence[dict]) -> dict:
    """Clips (T_i, 3, H, W) of a batch, padded at the end with zero frames.

    Returns ``inputs``: ``frames`` (B, T, 3, H, W) uint8 with ``T = max T_i``,
    ``frame_mask`` (B, T) bool (True = real frame) and ``num_frames`` (B,) int64 (``T_i``,
    what :class:`vlkd.vlp.encoders.FrameSequenceEncoder` takes); ``data_samples`` as a list.
    """
    clips = [item['inputs'] for item in data_batch]
    samples = [item['data_samples'] for item in data_batch]
    for clip, sample in zip(clips, samples):
        if clip.dim() != 4 or clip.shape[1] != 3:
            raise ValueError(f'{_sample_name(sample)}: a clip must be (T, 3, H, W), got '
                             f'{tuple(clip.shape)}; pack it with PackVideoTextInputs.')
        if clip.shape[2:] != clips[0].shape[2:]:
            raise ValueError(f'{_sample_name(sample)} has {tuple(clip.shape[2:])} px frames, '
                             f'{_sample_name(samples[0])} {tuple(clips[0].shape[2:])}: resize '
                             'the frames of a batch to one size (ResizeFrames).')
    num_frames = torch.tensor([len(clip) for clip in clips], dtype=torch.long)
    frames = clips[0].new_zeros((len(clips), int(num_frames.max())) + clips[0].shape[1:])
    for i, clip in enumerate(clips):
        frames[i, :len(clip)] = clip
    frame_mask = torch.arange(frames.shape[1]) < num_frames[:, None]
    return dict(inputs=dict(frames=frames, frame_mask=frame_mask, num_frames=num_frames),
                data_samples=samples)


@FUNCTIONS.register_module()
def region_text_collate(data_batch: Sequence[dict], max_regions: Optional[int] = None) -> dict:
    """Region sets of a batch padded to N (and cut to their first ``max_regions``: the most
    confident ones) by :func:`vlkd.vlp.encoders.collate_regions`.

    Returns ``inputs=dict(regions=dict(features (B, N, F), boxes (B, N, 4) xyxy px,
    image_sizes (B, 2) (height, width) px, mask (B, N) bool, class_probs (B, N, K)))``,
    the fields of a :class:`vlkd.vlp.encoders.RegionBatch` (``RegionBatch(**regions)``),
    and ``data_samples`` as a list.
    """
    sets = [item['inputs'] for item in data_batch]
    samples = [item['data_samples'] for item in data_batch]
    for regions, sample in zip(sets, samples):
        if not isinstance(regions, RegionSet):
            raise TypeError(f'{_sample_name(sample)}: region_text_collate needs RegionSet '
                            f'inputs (PackRegionTextInputs), got {type(regions).__name__}.')
    batch = collate_regions(sets, max_regions)
    return dict(inputs=dict(regions=dict(features=batch.features, boxes=batch.boxes,
                                         image_sizes=batch.image_sizes, mask=batch.mask,
                                         class_probs=batch.class_probs)),
                data_samples=samples)
