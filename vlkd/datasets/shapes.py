"""vlkd-shapes: a small, deterministic open-vocabulary world of coloured shapes.

Used by the quickstart, the tests and the detection / segmentation / prompt-tuning examples.
:func:`generate_shapes` writes images with instance boxes and masks, semantic masks and
captions; the same parameters always give the same bytes.

Classes and the open-vocabulary split (fixed, like OV-COCO's 48 base / 17 novel):

- ``SHAPES_CLASSES``: circle, square, triangle, star, hexagon, pentagon, diamond, cross,
  heart, crescent, ellipse, arrow; COCO ``category_id`` = class index + 1.
- ``SHAPES_NOVEL_CLASSES``: star, heart, crescent. ``SHAPES_BASE_CLASSES``: the other 9,
  in the order above.
- ``SHAPES_COLORS``: 8 named colours (red, green, blue, yellow, orange, purple, white,
  black), drawn independently of the class, so a colour never gives a class away; an
  object never shares its colour with an object it touches.

Images (``image_size`` square, RGB) show 1 to ``max_objects`` shapes on a textured, muted
background (noisy, striped, gradient or checkered). Shape size (the diameter of the circle
around it) is 14-56 px at 128 px and scales with ``image_size``; rotation is uniform;
ellipses and diamonds get a random aspect. Classes are drawn from shuffled bags of all 12,
so they appear with (nearly) equal frequency. Later objects lie on top of earlier ones: an
instance mask holds the *visible* pixels and its box is their tight box. A placement that
would leave any object with less than 40% of its own area, or fewer than 60 px (scaled
with the image area), visible is re-sampled. No anti-aliasing: masks are exactly what is
drawn.

Layout of ``ROOT``::

    meta.json                                 version, seed, params, classes, base / novel,
                                              colours, per-split counts
    images/{split}/{image_id:06d}.png         RGB images
    semantic/{split}/{image_id:06d}.png       uint8 labels: 0 background, class index + 1
    annotations/instances_{split}.json        COCO instances, all 12 classes; image
                                              "file_name" is relative to images/{split}/
    annotations/instances_train_base.json     train with the novel annotations removed
    annotations/captions_{split}.json         COCO captions: images + [{id, image_id, caption}]

``split`` is train, val or test. Each split has its own random stream (seeded by
``(seed, split index)``), so splits never share images; image and annotation ids are unique
across splits. Instance annotations carry COCO fields (``bbox`` xywh in pixels, ``area`` =
visible pixels, ``iscrowd`` 0, ``segmentation`` as compressed RLE) plus ``color`` (a name of
``SHAPES_COLORS``); image entries also name their ``background``.

Open-vocabulary protocol (as OV-COCO): ``instances_train_base.json`` keeps every train
image and all 12 categories but only the base-class annotations. Novel objects are still
in the train images (unlabelled, i.e. background to a detector) and in the captions, which
mention every object by colour and name.

``ROOT`` is a cache: generation goes to a temporary sibling directory that is renamed to
``ROOT`` when complete, so ``ROOT`` is either absent or whole. If ``ROOT/meta.json`` has the
same parameters, :func:`generate_shapes` returns at once; different parameters, or a
non-empty ``ROOT`` without ``meta.json`` (not written by this generator), raise
``FileExistsError``: nothing is ever deleted or mixed.
"""
import json
import operator
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .cache_dir import default_cache_root, write_once
from .caption_words import count_word, join_and, plural, with_article
from .shape_drawing import (BACKGROUNDS, ClassBag, add_pixel_noise, draw_background, grow_mask,
                            jittered_color, rasterize, shape_parts)

__all__ = ['SHAPES_CLASSES', 'SHAPES_BASE_CLASSES', 'SHAPES_NOVEL_CLASSES', 'SHAPES_COLORS',
           'SHAPES_SPLITS', 'GENERATOR_VERSION', 'generate_shapes', 'default_shapes_root',
           'load_shapes_meta']

GENERATOR_VERSION = 1

SHAPES_CLASSES = ('circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond',
                  'cross', 'heart', 'crescent', 'ellipse', 'arrow')
SHAPES_NOVEL_CLASSES = ('star', 'heart', 'crescent')
SHAPES_BASE_CLASSES = tuple(c for c in SHAPES_CLASSES if c not in SHAPES_NOVEL_CLASSES)
SHAPES_COLORS = {
    'red': (220, 30, 30),
    'green': (30, 170, 50),
    'blue': (30, 70, 225),
    'yellow': (245, 220, 30),
    'orange': (250, 140, 20),
    'purple': (145, 40, 190),
    'white': (250, 250, 250),
    'black': (15, 15, 15),
}
SHAPES_SPLITS = ('train', 'val', 'test')

# Sizes at 128 px; they scale with image_size (areas with its square).
_SIZE_RANGE_128 = (14.0, 56.0)
_MIN_VISIBLE_PX_128 = 60
_MIN_VISIBLE_FRACTION = 0.4
_PLACEMENT_TRIES = 30


# ---------------------------------------------------------------------------------------
# Scenes

def _make_scene(rng: np.random.Generator, bag: ClassBag, image_size: int,
                max_objects: int) -> dict:
    """One image: pixels, semantic labels, visible instance masks and the background kind.

    Returns a dict with ``image`` (H, W, 3) uint8, ``semantic`` (H, W) uint8 (class index + 1,
    0 = background), ``background`` (a kind name) and ``objects``: a list of dicts with
    ``label`` (class index), ``color`` (name) and ``mask`` (H, W) bool of visible pixels.
    """
    scale = image_size / 128
    min_size, max_size = (s * scale for s in _SIZE_RANGE_128)
    min_visible_px = _MIN_VISIBLE_PX_128 * scale ** 2
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    image = draw_background(kind, image_size, rng)

    full_areas, visible = [], []  # per placed object
    labels, colors = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label = bag.draw()
        for _ in range(_PLACEMENT_TRIES):
            diameter = rng.uniform(min_size, max_size)
            center = rng.uniform(diameter / 2, image_size - diameter / 2, size=2)
            parts = shape_parts(SHAPES_CLASSES[label], rng)
            mask = rasterize(parts, center, diameter, rng.uniform(0, 2 * np.pi), image_size)
            area = int(mask.sum())
            if area < min_visible_px:
                continue
            remaining = [int((m & ~mask).sum()) for m in visible]
            if all(r >= max(_MIN_VISIBLE_FRACTION * a, min_visible_px)
                   for r, a in zip(remaining, full_areas)):
                break
        else:
            continue  # no valid placement: leave this object out
        # a colour unlike those of the objects it touches, so every outline stays visible
        touching = grow_mask(mask)
        taken = {c for c, m in zip(colors, visible) if (m & touching).any()}
        free = [c for c in SHAPES_COLORS if c not in taken]
        color = free[rng.integers(len(free))]
        visible = [m & ~mask for m in visible] + [mask]
        full_areas.append(area)
        labels.append(label)
        colors.append(color)
        image[mask] = jittered_color(SHAPES_COLORS[color], rng)

    image = add_pixel_noise(image, rng)
    semantic = np.zeros((image_size, image_size), dtype=np.uint8)
    for label, mask in zip(labels, visible):
        semantic[mask] = label + 1
    objects = [dict(label=lb, color=c, mask=m) for lb, c, m in zip(labels, colors, visible)]
    return dict(image=image, semantic=semantic,
                background=kind, objects=objects)


# ---------------------------------------------------------------------------------------
# Captions

def _relation(mask_a: np.ndarray, mask_b: np.ndarray) -> str:
    """Where object a is relative to object b, from the centroids of their visible pixels."""
    (ya, xa), (yb, xb) = (np.argwhere(m).mean(0) for m in (mask_a, mask_b))
    if abs(xa - xb) >= abs(ya - yb):
        return 'to the left of' if xa < xb else 'to the right of'
    return 'above' if ya < yb else 'below'


def _captions(scene: dict, rng: np.random.Generator) -> list:
    """Four captions of different styles, each naming every object by colour and class."""
    objects = [scene['objects'][i] for i in rng.permutation(len(scene['objects']))]
    phrases = [with_article(f"{o['color']} {SHAPES_CLASSES[o['label']]}") for o in objects]
    n = len(objects)
    background = f"{scene['background']} background"
    captions = []

    prefix = ['', 'a picture of ', 'an image showing ', 'a photo of '][rng.integers(4)]
    captions.append(prefix + join_and(phrases))

    scene_text = phrases[0]
    if n > 1:
        scene_text += f" {_relation(objects[0]['mask'], objects[1]['mask'])} {phrases[1]}"
    if n > 2:
        scene_text += ', with ' + join_and(phrases[2:])
    noun = 'shape' if n == 1 else 'shapes'
    captions.append(f'{count_word(n)} {noun}: {scene_text} on {with_article(background)}')

    if n == 1:
        captions.append(f'there is {phrases[0]} on {with_article(background)}')
    elif rng.random() < 0.5:
        captions.append('there is ' + ', '.join(phrases))
    else:
        captions.append(f'there are {count_word(n)} shapes here: {join_and(phrases)}')

    groups = {}
    for o in objects:  # count identical (colour, class) pairs, in first-seen order
        key = (o['color'], SHAPES_CLASSES[o['label']])
        groups[key] = groups.get(key, 0) + 1
    counted = [with_article(f'{color} {name}') if k == 1 else f'{count_word(k)} {color} {plural(name)}'
               for (color, name), k in groups.items()]
    prefix = ['', 'this image contains ', 'we can see '][rng.integers(3)]
    captions.append(prefix + join_and(counted))
    return captions


# ---------------------------------------------------------------------------------------
# Writing a dataset

def _check_params(seed=0, num_train=2000, num_val=200, num_test=200, image_size=128,
                  max_objects=5) -> dict:
    """The generator parameters as a dict of ints (with the version), or a clear error."""
    params = dict(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test,
                  image_size=image_size, max_objects=max_objects)
    for name, value in params.items():
        try:
            params[name] = operator.index(value)
        except TypeError:
            raise TypeError(f'{name} must be an integer, got {value!r}') from None
        if params[name] < 0:
            raise ValueError(f'{name} must be >= 0, got {value}')
    if params['image_size'] < 32:
        raise ValueError(f"image_size must be >= 32 px, got {params['image_size']}")
    if not 1 <= params['max_objects'] <= 20:
        raise ValueError(f"max_objects must be in 1..20, got {params['max_objects']}")
    return dict(version=GENERATOR_VERSION, **params)


def default_shapes_root(**params) -> Path:
    """``$VLKD_HOME/data/shapes-<hash of params>`` (``VLKD_HOME`` defaults to ~/.cache/vlkd).

    Takes the keyword arguments of :func:`generate_shapes` (except ``root``).
    """
    return default_cache_root('shapes', _check_params(**params))


def load_shapes_meta(root) -> dict:
    """The contents of ``root/meta.json``, or a FileNotFoundError saying how to make it."""
    path = Path(root) / 'meta.json'
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist: generate vlkd-shapes with '
                                f'`python tools/make_shapes.py --out {root}`')
    return json.loads(path.read_text())


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def _tight_box(mask: np.ndarray) -> list:
    """COCO box [x, y, w, h] in pixel units covering every True pixel."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _write_json(path: Path, data: dict):
    path.write_text(json.dumps(data, separators=(',', ':')))


def _write_split(out: Path, split: str, params: dict, first_ids: dict) -> dict:
    """Write one split's images and json files; return its counts and advance ``first_ids``."""
    num_images = params[f'num_{split}']
    rng = np.random.default_rng([params['seed'], SHAPES_SPLITS.index(split)])
    bag = ClassBag(len(SHAPES_CLASSES), rng)
    for sub in ('images', 'semantic'):
        (out / sub / split).mkdir(parents=True)
    images, instances, captions = [], [], []
    per_class = dict.fromkeys(SHAPES_CLASSES, 0)
    for index in range(num_images):
        image_id = first_ids['image'] + index
        file_name = f'{image_id:06d}.png'
        scene = _make_scene(rng, bag, params['image_size'], params['max_objects'])
        Image.fromarray(scene['image']).save(out / 'images' / split / file_name)
        Image.fromarray(scene['semantic']).save(out / 'semantic' / split / file_name)
        images.append(dict(id=image_id, file_name=file_name, height=params['image_size'],
                           width=params['image_size'], background=scene['background']))
        for obj in scene['objects']:
            instances.append(dict(
                id=first_ids['annotation'] + len(instances), image_id=image_id,
                category_id=obj['label'] + 1, bbox=_tight_box(obj['mask']),
                area=int(obj['mask'].sum()), iscrowd=0, segmentation=_rle(obj['mask']),
                color=obj['color']))
            per_class[SHAPES_CLASSES[obj['label']]] += 1
        for text in _captions(scene, rng):
            captions.append(dict(id=first_ids['caption'] + len(captions), image_id=image_id,
                                 caption=text))
    first_ids['image'] += num_images
    first_ids['annotation'] += len(instances)
    first_ids['caption'] += len(captions)

    info = dict(description=f'vlkd-shapes {split}', version=GENERATOR_VERSION,
                seed=params['seed'])
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(SHAPES_CLASSES)]
    annotations = out / 'annotations'
    _write_json(annotations / f'instances_{split}.json',
                dict(info=info, images=images, annotations=instances, categories=categories))
    _write_json(annotations / f'captions_{split}.json',
                dict(info=info, images=images, annotations=captions))
    if split == 'train':
        novel_ids = {SHAPES_CLASSES.index(c) + 1 for c in SHAPES_NOVEL_CLASSES}
        base = [a for a in instances if a['category_id'] not in novel_ids]
        _write_json(annotations / 'instances_train_base.json',
                    dict(info=dict(info, description='vlkd-shapes train, base classes only'),
                         images=images, annotations=base, categories=categories))
    return dict(images=num_images, instances=len(instances), captions=len(captions),
                per_class=per_class)


def _expected_files() -> list:
    names = [f'{kind}_{split}.json' for split in SHAPES_SPLITS
             for kind in ('instances', 'captions')] + ['instances_train_base.json']
    return [f'annotations/{name}' for name in names]


def generate_shapes(root=None, seed: int = 0, num_train: int = 2000, num_val: int = 200,
                    num_test: int = 200, image_size: int = 128, max_objects: int = 5) -> Path:
    """Generate vlkd-shapes into ``root`` (see the module docstring) and return its path.

    ``root=None`` uses :func:`default_shapes_root` for these parameters. Returns at once if
    ``root`` already holds a dataset with the same parameters; raises ``FileExistsError`` if
    it holds anything else. Safe against concurrent calls for the same ``root``.
    """
    params = _check_params(seed, num_train, num_val, num_test, image_size, max_objects)
    if root is None:
        root = default_shapes_root(seed=seed, num_train=num_train, num_val=num_val,
                                   num_test=num_test, image_size=image_size,
                                   max_objects=max_objects)

    def write(tmp: Path) -> dict:
        (tmp / 'annotations').mkdir()
        first_ids = dict(image=1, annotation=1, caption=1)
        counts = {split: _write_split(tmp, split, params, first_ids) for split in SHAPES_SPLITS}
        return dict(name='vlkd-shapes', version=GENERATOR_VERSION, seed=params['seed'],
                    params=params, classes=list(SHAPES_CLASSES),
                    base_classes=list(SHAPES_BASE_CLASSES),
                    novel_classes=list(SHAPES_NOVEL_CLASSES),
                    colors={name: list(rgb) for name, rgb in SHAPES_COLORS.items()},
                    backgrounds=list(BACKGROUNDS), counts=counts)

    return write_once(root, params, _expected_files(), write, 'vlkd-shapes')
