"""ShapesVideoTextDataset, frame sampling, frame transforms and the padding video collate."""
import json
import random
import shutil

import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import init_default_scope
from PIL import Image

from vlkd.datasets.image_text import SampleError
from vlkd.datasets.video_text import sample_frame_indices
from vlkd.registry import DATASETS

PIPELINE = [dict(type='LoadVideoFrames'), dict(type='PackVideoTextInputs')]


def build(root, split='train', **kwargs):
    init_default_scope('vlkd')
    kwargs.setdefault('pipeline', PIPELINE)
    return DATASETS.build(dict(type='ShapesVideoTextDataset', data_root=str(root),
                               ann_file=f'annotations/videos_{split}.json',
                               data_prefix=dict(frames=f'frames/{split}/'), **kwargs))


def annotations(root, split='train'):
    return json.loads((root / 'annotations' / f'videos_{split}.json').read_text())


def test_all_frames_with_a_caption(shapes_video_root):
    data = annotations(shapes_video_root)
    dataset = build(shapes_video_root, test_mode=True)
    assert len(dataset) == len(data['videos'])
    for index, video in enumerate(data['videos']):
        item = dataset[index]
        frames, sample = item['inputs'], item['data_samples']
        assert frames.dtype == torch.uint8 and frames.shape == (video['num_frames'], 3, 64, 64)
        rgb = np.array(Image.open(shapes_video_root / 'frames' / 'train' / video['frame_dir']
                                  / '002.png'))
        np.testing.assert_array_equal(frames[2].permute(1, 2, 0).numpy(), rgb[..., ::-1])  # BGR
        captions = [a['caption'] for a in data['annotations'] if a['video_id'] == video['id']]
        assert sample.video_id == video['id'] and sample.texts == captions
        assert sample.text == captions[0]  # test mode: the first caption
        assert sample.frame_inds == list(range(video['num_frames']))
    random.seed(0)
    train = build(shapes_video_root)
    assert len({train[0]['data_samples'].text for _ in range(20)}) > 1


def test_frame_sampling_by_hand():
    # 8 frames in 4 segments [0, 2) [2, 4) [4, 6) [6, 8)
    assert sample_frame_indices(8, 4, 'uniform') == [1, 3, 5, 7]
    assert sample_frame_indices(7, 3, 'uniform') == [1, 3, 5]  # [0, 2) [2, 4) [4, 7)
    assert sample_frame_indices(5, None, 'random') == [0, 1, 2, 3, 4]
    assert sample_frame_indices(8, 3, 'consecutive', test_mode=True) == [2, 3, 4]
    assert sample_frame_indices(8, 4, 'random', test_mode=True) == [1, 3, 5, 7]
    random.seed(0)
    draws = [sample_frame_indices(8, 4, 'random') for _ in range(200)]
    for draw in draws:
        assert [i // 2 for i in draw] == [0, 1, 2, 3]  # one frame of each segment
    assert {tuple(d) for d in draws} == {(a, b, c, d) for a in (0, 1) for b in (2, 3)
                                         for c in (4, 5) for d in (6, 7)}
    starts = {sample_frame_indices(8, 3, 'consecutive')[0] for _ in range(100)}
    assert starts == set(range(6))
    with pytest.raises(ValueError, match='frame_sampling'):
        sample_frame_indices(8, 3, 'middle')


def test_sampled_frames_are_the_right_files(shapes_video_root):
    dataset = build(shapes_video_root, num_frames=4, frame_sampling='uniform')
    video = annotations(shapes_video_root)['videos'][1]
    item = dataset[1]
    expected = sample_frame_indices(video['num_frames'], 4, 'uniform')
    assert item['data_samples'].frame_inds == expected and item['inputs'].shape[0] == 4
    for frame, t in zip(item['inputs'], expected):
        rgb = np.array(Image.open(shapes_video_root / 'frames' / 'train' / video['frame_dir']
                                  / f'{t:03d}.png'))
        np.testing.assert_array_equal(frame.permute(1, 2, 0).numpy(), rgb[..., ::-1])


def test_clip_shorter_than_num_frames_is_named(shapes_video_root):
    data = annotations(shapes_video_root)
    shortest = min(data['videos'], key=lambda v: v['num_frames'])
    assert shortest['num_frames'] < 8
    with pytest.raises(ValueError, match=rf"clip {shortest['id']} \(.*{shortest['frame_dir']}\) "
                                         rf"has {shortest['num_frames']} frames, fewer than "
                                         r'num_frames=8'):
        build(shapes_video_root, num_frames=8)


def test_missing_or_broken_frames_and_empty_captions(tmp_path, shapes_video_root):
    root = tmp_path / 'videos'
    shutil.copytree(shapes_video_root, root)
    data = annotations(root)
    video = data['videos'][0]
    (root / 'frames' / 'train' / video['frame_dir'] / '001.png').unlink()
    dataset = build(root)
    with pytest.raises(SampleError, match=rf"frame_dir=.*{video['frame_dir']}, "
                                          rf"video_id={video['id']}.*001.png does not exist"):
        dataset[0]
    data['annotations'][4]['caption'] = '  '
    (root / 'annotations' / 'videos_train.json').write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"annotation {data['annotations'][4]['id']} "
                                         r'\(clip .*\): the caption is empty'):
        build(root)


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n'])
def test_undecodable_frame_is_named(tmp_path, shapes_video_root, content):
    root = tmp_path / 'videos'
    shutil.copytree(shapes_video_root, root)
    video = annotations(root)['videos'][1]
    (root / 'frames' / 'train' / video['frame_dir'] / '000.png').write_bytes(content)
    with pytest.raises(SampleError, match=f"{video['frame_dir']}/000.png could not be decoded"):
        build(root)[1]


def test_resize_frames(shapes_video_root):
    dataset = build(shapes_video_root, num_frames=5, pipeline=[
        dict(type='LoadVideoFrames'), dict(type='ResizeFrames', scale=(32, 24)),
        dict(type='PackVideoTextInputs')])
    assert dataset[0]['inputs'].shape == (5, 3, 24, 32)


def test_runner_builds_a_dataloader_with_the_collate(shapes_video_root):
    from mmengine.runner import Runner
    init_default_scope('vlkd')
    loader = Runner.build_dataloader(dict(
        batch_size=3, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='vlkd.video_text_collate'),
        dataset=dict(type='ShapesVideoTextDataset', data_root=str(shapes_video_root),
                     ann_file='annotations/videos_val.json',
                     data_prefix=dict(frames='frames/val/'), num_frames=4,
                     frame_sampling='random', pipeline=PIPELINE)))
    batch = next(iter(loader))
    assert batch['inputs']['frames'].shape == (3, 4, 3, 64, 64)
    assert batch['inputs']['frame_mask'].all() and len(batch['data_samples']) == 3


def test_collate_pads_clips_and_marks_real_frames(shapes_video_root):
    init_default_scope('vlkd')
    collate = MMENGINE_FUNCTIONS.get('vlkd.video_text_collate')  # as the runner finds it
    dataset = build(shapes_video_root, test_mode=True)
    items = [dataset[i] for i in range(len(dataset))]
    lengths = [len(item['inputs']) for item in items]
    assert len(set(lengths)) > 1
    batch = collate(items)
    frames, mask = batch['inputs']['frames'], batch['inputs']['frame_mask']
    assert frames.shape == (len(items), max(lengths), 3, 64, 64) and frames.dtype == torch.uint8
    assert batch['inputs']['num_frames'].tolist() == lengths
    for i, (item, length) in enumerate(zip(items, lengths)):
        assert mask[i].tolist() == [t < length for t in range(max(lengths))]
        assert torch.equal(frames[i, :length], item['inputs'])
        assert not frames[i, length:].any()
    assert [s.video_id for s in batch['data_samples']] == [
        item['data_samples'].video_id for item in items]

    small = dict(items[1], inputs=items[1]['inputs'][:, :, :32])
    with pytest.raises(ValueError, match=rf"video_id {items[1]['data_samples'].video_id} has "
                                         r'\(32, 64\) px frames'):
        collate([items[0], small])
