"""Video-text data: vlkd-shapes-video clips with their captions, frame sampling, transforms.

:class:`ShapesVideoTextDataset` reads ``annotations/videos_{split}.json`` written by
:func:`vlkd.datasets.shapes_video.generate_shapes_video` (its docstring has the format):
one item per clip, with a caption drawn per fetch (the first one in test mode) and all of
them in ``texts``. Frame files are ``{data_prefix['frames']}/{frame_dir}/`` +
``frame_template.format(t)``, ``t = 0 .. num_frames - 1``.

Frame sampling picks ``num_frames`` of a clip's frames (all of them if ``None``; the clips
of a batch may then differ in length, and :func:`vlkd.datasets.collate.video_text_collate`
pads them), in time order:

- ``'uniform'``: the middle frame of each of ``num_frames`` equal segments (TSN testing);
- ``'random'``: a random frame of each segment (TSN training); uniform in test mode;
- ``'consecutive'``: ``num_frames`` consecutive frames from a random start; centred in test
  mode.

A clip with fewer frames than ``num_frames`` is an error naming the clip, raised when the
dataset loads. The pipeline :class:`LoadVideoFrames` -> (:class:`ResizeFrames`) ->
:class:`PackVideoTextInputs` gives ``inputs`` (T, 3, H, W) uint8 BGR (the channel order of
``LoadImageFromFile``, so image and video share normalisation) and a data sample with
``text``, ``texts``, ``video_id``, ``caption_id``, ``frame_inds`` in its metainfo.
"""
import os.path as osp
import random
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.fileio import get as get_bytes
from mmengine.structures import BaseDataElement

from vlkd.registry import DATASETS, TRANSFORMS
from .image_text import check_caption, read_annotation_json, run_pipeline
from .shapes import SHAPES_CLASSES

__all__ = ['ShapesVideoTextDataset', 'sample_frame_indices', 'LoadVideoFrames', 'ResizeFrames',
           'PackVideoTextInputs']

FRAME_SAMPLING = ('uniform', 'random', 'consecutive')
_MAKE_VIDEOS = 'Generate vlkd-shapes-video with `python tools/make_shapes_video.py --out DIR`.'


def sample_frame_indices(total: int, num_frames: Optional[int], mode: str,
                         test_mode: bool = False) -> List[int]:
    """Indices (ascending) of the frames to use from a clip of ``total`` frames (see the
    module docstring); random draws use Python's ``random``."""
    if mode not in FRAME_SAMPLING:
        raise ValueError(f'frame_sampling must be one of {FRAME_SAMPLING}, got {mode!r}.')
    if num_frames is None:
        return list(range(total))
    if num_frames > total:
        raise ValueError(f'cannot sample {num_frames} frames from a clip of {total}.')
    if mode == 'consecutive':
        start = (total - num_frames) // 2 if test_mode else random.randint(0, total - num_frames)
        return list(range(start, start + num_frames))
    bounds = [i * total // num_frames for i in range(num_frames + 1)]
    if mode == 'uniform' or test_mode:
        return [(low + high) // 2 for low, high in zip(bounds[:-1], bounds[1:])]
    return [random.randrange(low, high) for low, high in zip(bounds[:-1], bounds[1:])]


@DATASETS.register_module()
class ShapesVideoTextDataset(BaseDataset):
    """vlkd-shapes-video clips with motion captions (see the module docstring).

    Args:
        ann_file: ``annotations/videos_{split}.json``.
        data_prefix: ``dict(frames='frames/{split}/')``.
        num_frames: frames per item; None: every frame of the clip.
        frame_sampling: ``'uniform'``, ``'random'`` or ``'consecutive'``.
        frame_template: file name of frame ``t``.
    """

    METAINFO = dict(classes=SHAPES_CLASSES)

    def __init__(self, ann_file: str, num_frames: Optional[int] = None,
                 frame_sampling: str = 'uniform', frame_template: str = '{:03d}.png',
                 **kwargs):
        if frame_sampling not in FRAME_SAMPLING:
            raise ValueError(f'frame_sampling must be one of {FRAME_SAMPLING}, got '
                             f'{frame_sampling!r}.')
        if num_frames is not None and num_frames < 1:
            raise ValueError(f'num_frames must be >= 1 or None (all frames), got {num_frames}.')
        self.num_frames = num_frames
        self.frame_sampling = frame_sampling
        self.frame_template = frame_template
        kwargs.setdefault('data_prefix', dict(frames=''))
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        data = read_annotation_json(self.ann_file, _MAKE_VIDEOS)
        frames_dir = self.data_prefix.get('frames', '')
        videos = {}
        for video in data['videos']:
            videos[video['id']] = dict(video_id=video['id'],
                                       frame_dir=osp.join(frames_dir, video['frame_dir']),
                                       total_frames=video['num_frames'], texts=[],
                                       caption_ids=[])
        for ann in data['annotations']:
            video = videos.get(ann['video_id'])
            if video is None:
                raise ValueError(f'{self.ann_file}: annotation {ann["id"]} refers to video '
                                 f'{ann["video_id"]}, which is not in "videos".')
            where = f'{self.ann_file}: annotation {ann["id"]} (clip {video["frame_dir"]})'
            video['texts'].append(check_caption(ann['caption'], where))
            video['caption_ids'].append(ann['id'])
        for video in videos.values():
            if not video['texts']:
                raise ValueError(f'{self.ann_file}: clip {video["video_id"]} '
                                 f'({video["frame_dir"]}) has no caption.')
        if self.num_frames is not None:
            short = [v for v in videos.values() if v['total_frames'] < self.num_frames]
            if short:
                clip = short[0]
                raise ValueError(
                    f'{self.ann_file}: clip {clip["video_id"]} ({clip["frame_dir"]}) has '
                    f'{clip["total_frames"]} frames, fewer than num_frames={self.num_frames} '
                    f'asked ({len(short)} clips are that short). Ask for fewer frames, or '
                    'num_frames=None for every frame of each clip (batches are padded).')
        return list(videos.values())

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        info['frame_inds'] = sample_frame_indices(info['total_frames'], self.num_frames,
                                                  self.frame_sampling, self.test_mode)
        info['frame_paths'] = [osp.join(info['frame_dir'], self.frame_template.format(t))
                               for t in info['frame_inds']]
        index = 0 if self.test_mode else random.randrange(len(info['texts']))
        info['text'] = info['texts'][index]
        info['caption_id'] = info['caption_ids'][index]
        return run_pipeline(self.pipeline, info, type(self).__name__)


@TRANSFORMS.register_module()
class LoadVideoFrames(BaseTransform):
    """Read ``results['frame_paths']`` into ``results['frames']`` (T, H, W, 3) uint8 BGR;
    a frame that is missing or fails to decode, or one of another size, is an error
    naming the frame file."""

    def transform(self, results: dict) -> dict:
        frames = []
        for path in results['frame_paths']:
            try:
                content = get_bytes(path)
            except FileNotFoundError as err:
                raise FileNotFoundError(f'frame {path} does not exist') from err
            frame = mmcv.imfrombytes(content, flag='color', channel_order='bgr') \
                if content else None
            if frame is None:
                raise ValueError(f'frame {path} could not be decoded as an image')
            if frames and frame.shape != frames[0].shape:
                raise ValueError(f'frame {path} is {frame.shape[:2]}, the clip\'s first frame '
                                 f'{frames[0].shape[:2]}')
            frames.append(frame)
        results['frames'] = np.stack(frames)
        results['img_shape'] = frames[0].shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeFrames(BaseTransform):
    """Resize every frame to ``scale`` (width, height) px, bilinear."""

    def __init__(self, scale: Tuple[int, int]):
        self.scale = tuple(scale)

    def transform(self, results: dict) -> dict:
        results['frames'] = np.stack([mmcv.imresize(f, self.scale) for f in results['frames']])
        results['img_shape'] = results['frames'].shape[1:3]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale})'


@TRANSFORMS.register_module()
class PackVideoTextInputs(BaseTransform):
    """Pack ``frames`` (T, H, W, 3) into ``inputs`` (T, 3, H, W) uint8 and ``meta_keys``
    into the metainfo of a data sample."""

    def __init__(self, meta_keys: Sequence[str] = ('video_id', 'frame_dir', 'frame_inds',
                                                   'text', 'texts', 'caption_id')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        frames = np.ascontiguousarray(results['frames'].transpose(0, 3, 1, 2))
        sample = BaseDataElement(metainfo={key: results[key] for key in self.meta_keys
                                           if key in results})
        return dict(inputs=torch.from_numpy(frames), data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
