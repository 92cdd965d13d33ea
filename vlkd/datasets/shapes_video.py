"""vlkd-shapes-video: short clips of moving shapes with captions that describe the motion.

The video variant of :mod:`vlkd.datasets.shapes` (same 12 classes, 8 colours, textured
backgrounds and drawing code), for video-text pretraining (HERO-style frame order
modelling, video-text matching). :func:`generate_shapes_video` writes it; the same parameters
always give the same bytes.

A clip shows 1 to ``max_objects`` shapes (distinct colours) on a static background for
``min_frames`` to ``num_frames`` frames (``image_size`` square, RGB, fresh pixel noise per
frame). Shape diameters are 24-44 px at 128 px, scaled with ``image_size``. Each object
does one of these motions over the clip (``MOTIONS``; image y points down):

================================ ==========================================================
motion                           what happens
================================ ==========================================================
left / right / up / down         moves in a straight line, 30-55% of the image side
bounce_left / _right / _top /    moves towards that edge, touches it between 30% and 70%
_bottom                          of the clip, and moves back
clockwise / counterclockwise     spins in place, 10-15 degrees a frame (never a circle)
grow / shrink                    its diameter changes by a factor 0.55 (or 1 / 0.55)
appear / disappear               absent for (present for) the first 2 to T - 2 frames
still                            stays where it is
================================ ==========================================================

Later objects are drawn on top of earlier ones; a placement that would leave any object,
in any frame where it is present, with less than 40% of its area or fewer than 60 px
(scaled with the image area) visible is re-sampled. Every clip has three captions, each
naming every object by colour, class and motion: "a red star moves to the left and a blue
circle falls", "a red star slides left while a blue circle rises", "two shapes on a striped
background: a red star moving to the left and a blue circle falling".

Layout of ``ROOT``::

    meta.json                                  version, seed, params, classes, colours,
                                               motions, per-split counts
    frames/{split}/{video_id:06d}/{t:03d}.png  RGB frames t = 0 .. num_frames - 1
    annotations/videos_{split}.json            videos, captions and categories (below)

``videos_{split}.json`` (COCO-captions style, with videos in place of images)::

    videos: [{id, frame_dir ("000001", relative to frames/{split}/), num_frames, height,
              width, background,
              objects: [{category_id (class index + 1), color, motion,
                         boxes: per frame [x, y, w, h] px of its visible pixels, or null
                         where it is absent}]}]
    annotations: [{id, video_id, caption}]
    categories: [{id, name, supercategory}]

Splits (train, val, test) have their own random streams and never share clips; ids are
unique across splits. ``ROOT`` is a write-once cache (:mod:`vlkd.datasets.cache_dir`): the
same parameters reuse it, anything else there raises ``FileExistsError``.
"""
import json
import operator
from pathlib import Path

import numpy as np
from PIL import Image

from .cache_dir import default_cache_root, write_once
from .caption_words import count_word, join_and, with_article
from .shape_drawing import (BACKGROUNDS, ClassBag, add_pixel_noise, draw_background,
                            jittered_color, rasterize, shape_parts)
from .shapes import SHAPES_CLASSES, SHAPES_COLORS, SHAPES_SPLITS

__all__ = ['MOTIONS', 'VIDEO_GENERATOR_VERSION', 'generate_shapes_video',
           'default_shapes_video_root', 'load_shapes_video_meta']

VIDEO_GENERATOR_VERSION = 1

# motion: (present tense, another verb, participle)
_MOTION_PHRASES = {
    'left': ('moves to the left', 'slides left', 'moving to the left'),
    'right': ('moves to the right', 'slides right', 'moving to the right'),
    'up': ('moves up', 'rises', 'rising'),
    'down': ('moves down', 'falls', 'falling'),
    'bounce_left': ('bounces off the left edge', 'hits the left edge and comes back',
                    'bouncing off the left edge'),
    'bounce_right': ('bounces off the right edge', 'hits the right edge and comes back',
                     'bouncing off the right edge'),
    'bounce_top': ('bounces off the top edge', 'hits the top edge and comes back',
                   'bouncing off the top edge'),
    'bounce_bottom': ('bounces off the bottom edge', 'hits the bottom edge and comes back',
                      'bouncing off the bottom edge'),
    'clockwise': ('spins clockwise', 'turns clockwise', 'spinning clockwise'),
    'counterclockwise': ('spins counterclockwise', 'turns counterclockwise',
                         'spinning counterclockwise'),
    'grow': ('grows', 'gets bigger', 'growing'),
    'shrink': ('shrinks', 'gets smaller', 'shrinking'),
    'appear': ('appears', 'shows up', 'appearing'),
    'disappear': ('disappears', 'vanishes', 'disappearing'),
    'still': ('stays still', 'does not move', 'standing still'),
}
MOTIONS = tuple(_MOTION_PHRASES)
# motion groups and their probabilities
_MOTION_GROUPS = ((('left', 'right', 'up', 'down'), 0.3),
                  (('bounce_left', 'bounce_right', 'bounce_top', 'bounce_bottom'), 0.15),
                  (('clockwise', 'counterclockwise'), 0.15),
                  (('grow', 'shrink'), 0.15),
                  (('appear', 'disappear'), 0.15),
                  (('still',), 0.1))
_DIRECTIONS = {'left': (-1, 0), 'right': (1, 0), 'up': (0, -1), 'down': (0, 1)}

# Sizes at 128 px; they scale with image_size (areas with its square).
_SIZE_RANGE_128 = (24.0, 44.0)
_MIN_VISIBLE_PX_128 = 60
_MIN_VISIBLE_FRACTION = 0.4
_PLACEMENT_TRIES = 30
_TRAVEL_RANGE = (0.3, 0.55)  # distance travelled over a clip, in image sides
_SPIN_RANGE_DEG = (10.0, 15.0)  # per frame; below half of every symmetry angle but the circle's
_SCALE_CHANGE = 0.55


# ---------------------------------------------------------------------------------------
# Motions

def _sample_motion(rng: np.random.Generator, class_name: str) -> str:
    while True:
        group = rng.choice(len(_MOTION_GROUPS), p=[p for _, p in _MOTION_GROUPS])
        motions = _MOTION_GROUPS[group][0]
        motion = motions[rng.integers(len(motions))]
        if not (class_name == 'circle' and motion in ('clockwise', 'counterclockwise')):
            return motion


def _trajectory(motion: str, rng: np.random.Generator, length: int, image_size: int,
                diameter: float, parts: list) -> dict:
    """Per frame ``centers`` (L, 2) x, y px, ``diameters`` (L,), ``angles`` (L,) radians and
    ``present`` (L,) bool of the shape drawn by ``parts`` at (largest) ``diameter`` doing
    ``motion``. A bouncing shape's own outline touches the edge."""
    t = np.arange(length, dtype=float)
    progress = t / (length - 1)
    radius = diameter / 2
    room = image_size - diameter  # how far a centre can travel along an axis
    travel = min(rng.uniform(*_TRAVEL_RANGE) * image_size, room)
    center = rng.uniform(radius, image_size - radius, size=2)
    centers = np.tile(center, (length, 1))
    diameters = np.full(length, diameter)
    angles = np.full(length, rng.uniform(0, 2 * np.pi))
    present = np.ones(length, dtype=bool)
    if motion in _DIRECTIONS:
        direction = np.array(_DIRECTIONS[motion], dtype=float)
        axis = int(direction[1] != 0)
        sign = direction[axis]
        low = radius + (travel if sign < 0 else 0)
        start = rng.uniform(low, low + room - travel)
        centers[:, axis] = start + sign * travel * progress
    elif motion.startswith('bounce_'):
        side = motion[len('bounce_'):]
        axis = int(side in ('top', 'bottom'))
        # where the centre is when the outline (rotated, not its enclosing circle) touches
        angle = angles[0]
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        extent = np.concatenate([outline for outline, _ in parts]) @ rotation.T * radius
        if side in ('left', 'top'):
            contact, inward = -extent[:, axis].min(), 1.0
        else:
            contact, inward = image_size - extent[:, axis].max(), -1.0
        hit = rng.uniform(0.3, 0.7) * (length - 1)
        speed = travel / max(hit, length - 1 - hit)  # the longer leg covers `travel`
        centers[:, axis] = contact + inward * speed * np.abs(t - hit)
    elif motion in ('clockwise', 'counterclockwise'):  # y down: a positive angle turns clockwise
        step = np.deg2rad(rng.uniform(*_SPIN_RANGE_DEG))
        angles = angles + (step if motion == 'clockwise' else -step) * t
    elif motion == 'grow':
        diameters = diameter * (_SCALE_CHANGE + (1 - _SCALE_CHANGE) * progress)
    elif motion == 'shrink':
        diameters = diameter * (1 - (1 - _SCALE_CHANGE) * progress)
    elif motion in ('appear', 'disappear'):
        change = int(rng.integers(2, length - 1))  # 2 .. L - 2
        present = t >= change if motion == 'appear' else t < change
    elif motion != 'still':
        raise ValueError(f'unknown motion {motion!r}; expected one of {MOTIONS}')
    return dict(centers=centers, diameters=diameters, angles=angles, present=present)


# ---------------------------------------------------------------------------------------
# Clips

def _object_masks(parts: list, path: dict, image_size: int) -> np.ndarray:
    """(L, H, W) bool masks of an object along its trajectory (empty where absent)."""
    masks = np.zeros((len(path['present']), image_size, image_size), dtype=bool)
    for t in np.flatnonzero(path['present']):
        masks[t] = rasterize(parts, path['centers'][t], path['diameters'][t], path['angles'][t],
                             image_size)
    return masks


def _make_clip(rng: np.random.Generator, bag: ClassBag, length: int, image_size: int,
               max_objects: int) -> dict:
    """One clip: ``frames`` (L, H, W, 3) uint8, ``background`` kind and ``objects``: dicts
    with ``label``, ``color``, ``motion`` and ``visible`` (L, H, W) bool masks."""
    scale = image_size / 128
    min_size, max_size = (s * scale for s in _SIZE_RANGE_128)
    min_visible_px = _MIN_VISIBLE_PX_128 * scale ** 2
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    background = draw_background(kind, image_size, rng)

    objects = []  # placed so far, each with its full and visible masks
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = bag.draw()
        name = SHAPES_CLASSES[label]
        for _ in range(_PLACEMENT_TRIES):
            motion = _sample_motion(rng, name)
            parts = shape_parts(name, rng)
            path = _trajectory(motion, rng, length, image_size, rng.uniform(min_size, max_size),
                               parts)
            masks = _object_masks(parts, path, image_size)
            areas = masks.sum(axis=(1, 2))
            if (areas[path['present']] < min_visible_px).any():
                continue
            if all(_visible_enough(obj['visible'] & ~masks, obj['areas'], min_visible_px)
                   for obj in objects):
                break
        else:
            continue  # no valid placement: leave this object out
        for obj in objects:
            obj['visible'] = obj['visible'] & ~masks
        objects.append(dict(label=label, motion=motion, visible=masks, areas=areas))

    colors = rng.permutation(list(SHAPES_COLORS))[:len(objects)].tolist()
    fills = [jittered_color(SHAPES_COLORS[color], rng) for color in colors]
    frames = []
    for t in range(length):
        image = background.copy()
        for obj, fill in zip(objects, fills):
            image[obj['visible'][t]] = fill
        frames.append(add_pixel_noise(image, rng))
    return dict(frames=np.stack(frames), background=kind,
                objects=[dict(label=o['label'], color=c, motion=o['motion'],
                              visible=o['visible']) for o, c in zip(objects, colors)])


def _visible_enough(visible: np.ndarray, full_areas: np.ndarray, min_visible_px: float) -> bool:
    """Whether every frame where the object is present keeps enough of it visible."""
    present = full_areas > 0
    remaining = visible.sum(axis=(1, 2))[present]
    return bool((remaining >= np.maximum(_MIN_VISIBLE_FRACTION * full_areas[present],
                                         min_visible_px)).all())


def _captions(clip: dict, rng: np.random.Generator) -> list:
    """Three captions, each naming every object by colour, class and motion."""
    objects = [clip['objects'][i] for i in rng.permutation(len(clip['objects']))]
    nouns = [with_article(f"{o['color']} {SHAPES_CLASSES[o['label']]}") for o in objects]
    phrases = [[f'{noun} {_MOTION_PHRASES[o["motion"]][style]}'
                for noun, o in zip(nouns, objects)] for style in range(3)]
    n = len(objects)
    first = join_and(phrases[0])
    if n == 2:
        second = f'{phrases[1][0]} while {phrases[1][1]}'
    else:
        second = ['', 'in this clip ', 'here '][rng.integers(3)] + join_and(phrases[1])
    noun = 'shape' if n == 1 else 'shapes'
    third = (f"{count_word(n)} {noun} on {with_article(clip['background'] + ' background')}: "
             f'{join_and(phrases[2])}')
    return [first, second, third]


# ---------------------------------------------------------------------------------------
# Writing a dataset

def _check_params(seed=0, num_train=1000, num_val=100, num_test=100, image_size=64,
                  num_frames=8, min_frames=None, max_objects=3) -> dict:
    """The generator parameters as a dict of ints (with the version), or a clear error."""
    params = dict(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test,
                  image_size=image_size, num_frames=num_frames,
                  min_frames=num_frames if min_frames is None else min_frames,
                  max_objects=max_objects)
    for name, value in params.items():
        try:
            params[name] = operator.index(value)
        except TypeError:
            raise TypeError(f'{name} must be an integer, got {value!r}') from None
        if params[name] < 0:
            raise ValueError(f'{name} must be >= 0, got {value}')
    if params['image_size'] < 32:
        raise ValueError(f"image_size must be >= 32 px, got {params['image_size']}")
    if not 4 <= params['min_frames'] <= params['num_frames'] <= 100:
        raise ValueError(f"need 4 <= min_frames <= num_frames <= 100 (appearing objects need "
                         f"4 frames), got min_frames={params['min_frames']}, "
                         f"num_frames={params['num_frames']}")
    if not 1 <= params['max_objects'] <= len(SHAPES_COLORS):
        raise ValueError(f"max_objects must be in 1..{len(SHAPES_COLORS)} (one colour each), "
                         f"got {params['max_objects']}")
    return dict(version=VIDEO_GENERATOR_VERSION, **params)


def default_shapes_video_root(**params) -> Path:
    """``$VLKD_HOME/data/shapes-video-<hash of params>``; takes the keyword arguments of
    :func:`generate_shapes_video` (except ``root``)."""
    return default_cache_root('shapes-video', _check_params(**params))


def load_shapes_video_meta(root) -> dict:
    """The contents of ``root/meta.json``, or a FileNotFoundError saying how to make it."""
    path = Path(root) / 'meta.json'
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist: generate vlkd-shapes-video with '
                                f'`python tools/make_shapes_video.py --out {root}`')
    return json.loads(path.read_text())


def _tight_box(mask: np.ndarray):
    """COCO box [x, y, w, h] px of the True pixels, or None if there are none."""
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _write_split(out: Path, split: str, params: dict, first_ids: dict) -> dict:
    """Write one split's frames and json file; return its counts and advance ``first_ids``."""
    rng = np.random.default_rng([params['seed'], SHAPES_SPLITS.index(split)])
    bag = ClassBag(len(SHAPES_CLASSES), rng)
    videos, captions = [], []
    per_motion = dict.fromkeys(MOTIONS, 0)
    for index in range(params[f'num_{split}']):
        video_id = first_ids['video'] + index
        length = int(rng.integers(params['min_frames'], params['num_frames'] + 1))
        clip = _make_clip(rng, bag, length, params['image_size'], params['max_objects'])
        frame_dir = out / 'frames' / split / f'{video_id:06d}'
        frame_dir.mkdir(parents=True)
        for t, frame in enumerate(clip['frames']):
            Image.fromarray(frame).save(frame_dir / f'{t:03d}.png')
        objects = []
        for obj in clip['objects']:
            objects.append(dict(category_id=obj['label'] + 1, color=obj['color'],
                                motion=obj['motion'],
                                boxes=[_tight_box(mask) for mask in obj['visible']]))
            per_motion[obj['motion']] += 1
        videos.append(dict(id=video_id, frame_dir=frame_dir.name, num_frames=length,
                           height=params['image_size'], width=params['image_size'],
                           background=clip['background'], objects=objects))
        for text in _captions(clip, rng):
            captions.append(dict(id=first_ids['caption'] + len(captions), video_id=video_id,
                                 caption=text))
    first_ids['video'] += len(videos)
    first_ids['caption'] += len(captions)
    info = dict(description=f'vlkd-shapes-video {split}', version=VIDEO_GENERATOR_VERSION,
                seed=params['seed'])
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SHAPES_CLASSES)]
    (out / 'annotations' / f'videos_{split}.json').write_text(json.dumps(
        dict(info=info, videos=videos, annotations=captions, categories=categories),
        separators=(',', ':')))
    return dict(videos=len(videos), frames=sum(v['num_frames'] for v in videos),
                captions=len(captions), per_motion=per_motion)


def generate_shapes_video(root=None, seed: int = 0, num_train: int = 1000, num_val: int = 100,
                          num_test: int = 100, image_size: int = 64, num_frames: int = 8,
                          min_frames=None, max_objects: int = 3) -> Path:
    """Generate vlkd-shapes-video into ``root`` (see the module docstring); return its path.

    Clips have ``min_frames`` (default ``num_frames``) to ``num_frames`` frames.
    ``root=None`` uses :func:`default_shapes_video_root`. Returns at once if ``root``
    already holds clips made with the same parameters; raises ``FileExistsError`` if it
    holds anything else.
    """
    params = _check_params(seed, num_train, num_val, num_test, image_size, num_frames,
                           min_frames, max_objects)
    if root is None:
        root = default_cache_root('shapes-video', params)

    def write(tmp: Path) -> dict:
        (tmp / 'annotations').mkdir()
        first_ids = dict(video=1, caption=1)
        counts = {split: _write_split(tmp, split, params, first_ids) for split in SHAPES_SPLITS}
        return dict(name='vlkd-shapes-video', version=VIDEO_GENERATOR_VERSION,
                    seed=params['seed'], params=params, classes=list(SHAPES_CLASSES),
                    colors={name: list(rgb) for name, rgb in SHAPES_COLORS.items()},
                    motions=list(MOTIONS), backgrounds=list(BACKGROUNDS), counts=counts)

    expected = [f'annotations/videos_{split}.json' for split in SHAPES_SPLITS]
    return write_once(root, params, expected, write, 'vlkd-shapes-video')
