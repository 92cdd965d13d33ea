"""vlkd-shapes-video generator: determinism, splits, motions seen in the boxes and pixels,
captions that name every object's motion, the write-once cache and the CLI."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlkd.datasets import shapes_video
from vlkd.datasets.shape_drawing import rasterize, shape_parts
from vlkd.datasets.shapes import SHAPES_CLASSES, SHAPES_COLORS
from vlkd.datasets.shapes_video import MOTIONS, generate_shapes_video

SPLITS = ('train', 'val', 'test')


def videos(root, split):
    return json.loads((root / 'annotations' / f'videos_{split}.json').read_text())


def frame(root, split, video, t):
    return np.array(Image.open(root / 'frames' / split / video['frame_dir'] / f'{t:03d}.png'))


def files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


@pytest.fixture(scope='module')
def many_clips(tmp_path_factory):
    """80 clips: every motion occurs."""
    return generate_shapes_video(tmp_path_factory.mktemp('many') / 'root', seed=2,
                                 num_train=80, num_val=0, num_test=0)


def test_same_seed_same_bytes_other_seed_differs(shapes_video_root, tmp_path):
    params = dict(num_train=6, num_val=3, num_test=2, image_size=64, num_frames=8,
                  min_frames=5, max_objects=3)
    first = files(shapes_video_root)
    again = files(generate_shapes_video(tmp_path / 'again', seed=0, **params))
    assert again == first
    other = files(generate_shapes_video(tmp_path / 'other', seed=1, **params))
    assert other['annotations/videos_train.json'] != first['annotations/videos_train.json']


def test_splits_lengths_and_frame_files(shapes_video_root):
    meta = json.loads((shapes_video_root / 'meta.json').read_text())
    assert meta['params']['min_frames'] == 5 and meta['motions'] == list(MOTIONS)
    ids, clips = set(), set()
    lengths = []
    for split in SPLITS:
        data = videos(shapes_video_root, split)
        assert len(data['videos']) == meta['counts'][split]['videos']
        assert [c['name'] for c in data['categories']] == list(SHAPES_CLASSES)
        for video in data['videos']:
            folder = shapes_video_root / 'frames' / split / video['frame_dir']
            names = sorted(p.name for p in folder.iterdir())
            assert names == [f'{t:03d}.png' for t in range(video['num_frames'])]
            assert frame(shapes_video_root, split, video, 0).shape == (64, 64, 3)
            assert all(len(o['boxes']) == video['num_frames'] for o in video['objects'])
            assert 1 <= len(video['objects']) <= 3
            assert len({o['color'] for o in video['objects']}) == len(video['objects'])
            ids.add(video['id'])
            clips.add(b''.join((folder / n).read_bytes() for n in names))
            lengths.append(video['num_frames'])
    assert len(ids) == len(clips) == 11
    assert min(lengths) >= 5 and max(lengths) <= 8 and len(set(lengths)) > 1


def box_centre(box):
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2])


def test_every_motion_shows_in_the_boxes_and_pixels(many_clips):
    size = 64
    seen = set()
    for video in videos(many_clips, 'train')['videos']:
        frames = [frame(many_clips, 'train', video, t) for t in range(video['num_frames'])]
        for obj in video['objects']:
            motion, boxes = obj['motion'], obj['boxes']
            seen.add(motion)
            present = [b is not None for b in boxes]
            if motion == 'appear':
                assert not present[0] and not present[1] and present[-1] and present[-2]
                assert present == sorted(present)  # absent, then present
            elif motion == 'disappear':
                assert present[0] and present[1] and not present[-1] and not present[-2]
                assert present == sorted(present, reverse=True)
            else:
                assert all(present)
            first, last = boxes[present.index(True)], [b for b in boxes if b][-1]
            shift = box_centre(last) - box_centre(first)
            if motion in ('left', 'right', 'up', 'down'):
                axis = int(motion in ('up', 'down'))
                sign = -1 if motion in ('left', 'up') else 1
                assert sign * shift[axis] > 0.15 * size, (motion, boxes)
                assert abs(shift[1 - axis]) <= 3
            elif motion.startswith('bounce_'):
                side = motion[len('bounce_'):]
                axis = int(side in ('top', 'bottom'))
                # distance of the shape to that edge, per frame
                gap = [b[axis] if side in ('left', 'top') else size - b[axis] - b[axis + 2]
                       for b in boxes]
                closest = int(np.argmin(gap))
                assert 0 < closest < len(boxes) - 1 and gap[closest] <= 6, (motion, gap)
                assert gap[0] > gap[closest] + 4 and gap[-1] > gap[closest] + 4
            elif motion in ('clockwise', 'counterclockwise', 'still', 'grow', 'shrink'):
                assert np.abs(shift).max() <= 3, (motion, boxes)
                areas = [b[2] * b[3] for b in boxes]
                if motion == 'grow':
                    assert areas[-1] > 1.8 * areas[0]
                if motion == 'shrink':
                    assert areas[0] > 1.8 * areas[-1]
            # the object's colour is drawn inside its box in every frame where it is
            rgb = np.array(SHAPES_COLORS[obj['color']])
            for image, box in zip(frames, boxes):
                if box is None:
                    continue
                x, y, w, h = box
                close = np.abs(image[y:y + h, x:x + w].astype(int) - rgb).max(-1) <= 26
                assert close.sum() >= shapes_video._MIN_VISIBLE_PX_128 / 4  # at 64 px
    assert seen == set(MOTIONS)


def test_positive_angles_turn_clockwise_on_screen():
    """The motion names rely on this: with y down, a positive angle turns clockwise."""
    parts = shape_parts('arrow', np.random.default_rng(0))
    tips = []
    for angle in (0.0, 0.4):  # the arrow points right at angle 0
        mask = rasterize(parts, np.array([32.0, 32.0]), 40, angle, 64)
        rows, cols = np.nonzero(mask)
        tip = cols.argmax()
        tips.append((rows[tip], cols[tip]))
    assert tips[1][0] > tips[0][0] + 5  # the tip went down: clockwise
    path = shapes_video._trajectory('clockwise', np.random.default_rng(0), 8, 64, 20.0, parts)
    assert (np.diff(path['angles']) > 0).all()


def test_captions_name_each_object_and_its_motion(many_clips):
    data = videos(many_clips, 'train')
    for video in data['videos']:
        captions = [c['caption'] for c in data['annotations'] if c['video_id'] == video['id']]
        assert len(captions) == 3 and len(set(captions)) == 3
        for style, caption in enumerate(captions):
            for obj in video['objects']:
                name = f"{obj['color']} {SHAPES_CLASSES[obj['category_id'] - 1]}"
                phrase = shapes_video._MOTION_PHRASES[obj['motion']][style]
                assert f'{name} {phrase}' in caption, (caption, obj)
    assert any(' while ' in c['caption'] for c in data['annotations'])
    assert any(c['caption'].startswith('three shapes on a') for c in data['annotations'])


def test_cache_reuse_mismatch_and_bad_parameters(tmp_path):
    small = dict(num_train=1, num_val=0, num_test=0)
    root = generate_shapes_video(tmp_path / 'v', **small)
    stamp = (root / 'meta.json').stat().st_mtime_ns
    assert generate_shapes_video(root, **small) == root
    assert (root / 'meta.json').stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match='num_frames: 8 there, 6 asked'):
        generate_shapes_video(root, num_frames=6, **small)
    with pytest.raises(ValueError, match='min_frames <= num_frames'):
        generate_shapes_video(tmp_path / 'x', num_frames=6, min_frames=7, **small)
    with pytest.raises(ValueError, match='max_objects'):
        generate_shapes_video(tmp_path / 'x', max_objects=9, **small)
    assert not (tmp_path / 'x').exists()


def test_make_shapes_video_cli(tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / 'tools' / 'make_shapes_video.py'
    spec = importlib.util.spec_from_file_location('make_shapes_video', path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    args = ['--out', str(tmp_path / 'cli'), '--seed', '3', '--num-train', '4', '--num-val',
            '1', '--num-test', '1', '--num-frames', '6']
    cli.main(args)
    printed = capsys.readouterr().out
    meta = json.loads((tmp_path / 'cli' / 'meta.json').read_text())
    assert meta['params']['num_frames'] == 6 and meta['seed'] == 3
    assert any(line.split() == ['frames'] + [str(meta['counts'][s]['frames']) for s in SPLITS]
               for line in printed.splitlines())
    cli.main(args)
    assert '(reused)' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='different parameters'):
        cli.main(args[:3] + ['4'] + args[4:])
