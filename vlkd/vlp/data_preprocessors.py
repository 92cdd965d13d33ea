"""Data preprocessors of CLIPPretrainer and VLPModel: images (:class:`HostBatchImgDataPreprocessor`),
regions and videos.

They take what :func:`vlkd.datasets.collate.region_text_collate` and
:func:`~vlkd.datasets.collate.video_text_collate` return, move it to the model's device and
hand the model a :class:`~vlkd.vlp.encoders.RegionBatch` or a
:class:`~vlkd.vlp.views.VideoBatch`::

    model = dict(type='VLPModel', ...,
                 data_preprocessor=dict(type='VideoDataPreprocessor', mean=..., std=...))
"""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor, ImgDataPreprocessor

from vlkd.registry import MODELS
from .clip_model import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
from .encoders import RegionBatch
from .views import VideoBatch


def _inputs(data: dict, key: str, collate: str) -> dict:
    inputs = data.get('inputs')
    if not isinstance(inputs, dict) or key not in inputs:
        raise ValueError(f'The batch has no inputs[{key!r}]: batch the dataset with '
                         f"collate_fn=dict(type='vlkd.{collate}').")
    return inputs


@MODELS.register_module()
class HostBatchImgDataPreprocessor(ImgDataPreprocessor):
    """mmengine's ``ImgDataPreprocessor`` (same arguments and result) with one host-to-device
    copy per batch and the data samples left on the host.

    mmengine's moves each image of the list to the device and flips, converts and
    normalises it there one by one, and moves each data sample's tensors (a vlkd-shapes
    caption sample holds two 0-d labels) one copy each: for a batch of 64, some 200
    synchronising copies and 300 kernel launches, which on a GPU took longer than the
    forward and backward pass of the tiny CLIP recipe (``tools/benchmark.py``, CLIP recipe
    row). Here images of one size are stacked on the host, copied once and processed as a
    batch (images of different sizes go through mmengine's per-image path). The data
    samples stay on the host either way: the models that use this preprocessor read labels
    from them and move them to the device as one tensor.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if (isinstance(inputs, (list, tuple)) and inputs
                and all(isinstance(image, torch.Tensor) for image in inputs)
                and len({image.shape for image in inputs}) == 1):
            inputs = torch.stack(inputs)
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.to(self.device, non_blocking=self._non_blocking)
        batch = super().forward(dict(inputs=inputs), training)
        return dict(inputs=batch['inputs'], data_samples=data.get('data_samples'))


@MODELS.register_module()
class RegionDataPreprocessor(BaseDataPreprocessor):
    """``inputs['regions']`` (the fields of a RegionBatch) -> a RegionBatch on the device."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        regions = _inputs(data, 'regions', 'region_text_collate')['regions']
        return dict(inputs=RegionBatch(**regions), data_samples=data.get('data_samples'))


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """``inputs['frames']`` (B, T, 3, H, W) uint8 and ``inputs['num_frames']`` (B,) -> a
    VideoBatch of float frames, ``(frames - mean) / std`` per channel, in RGB order when
    ``bgr_to_rgb`` (frames are loaded BGR like images).

    Args:
        mean, std: per-channel statistics on the 0-255 scale (default CLIP's).
        bgr_to_rgb: flip the channel order first.
    """

    def __init__(self, mean: Sequence[float] = CLIP_PIXEL_MEAN,
                 std: Sequence[float] = CLIP_PIXEL_STD, bgr_to_rgb: bool = True,
                 non_blocking: Optional[bool] = False):
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)
        self.bgr_to_rgb = bgr_to_rgb

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = _inputs(data, 'frames', 'video_text_collate')
        frames = inputs['frames']
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f'frames must be (B, T, 3, H, W), got {tuple(frames.shape)}.')
        if self.bgr_to_rgb:
            frames = frames.flip(2)
        frames = (frames.float() - self.mean) / self.std
        return dict(inputs=VideoBatch(frames, inputs['num_frames']),
                    data_samples=data.get('data_samples'))
