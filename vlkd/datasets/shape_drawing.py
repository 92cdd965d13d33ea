"""Drawing primitives of vlkd-shapes, shared by the image and the video generators.

Shapes are outlines in unit coordinates (inside the unit circle, y pointing down), drawn as
filled polygons without anti-aliasing by :func:`rasterize`; backgrounds are textures of two
muted colours (:func:`draw_background`). Every random choice is drawn from the
``numpy.random.Generator`` passed in, so a seed fixes the pixels.
"""
import colorsys

import numpy as np
from PIL import Image, ImageDraw

__all__ = ['BACKGROUNDS', 'COLOR_JITTER', 'PIXEL_NOISE_STD', 'shape_parts', 'rasterize',
           'draw_background', 'jittered_color', 'add_pixel_noise', 'grow_mask', 'ClassBag']

BACKGROUNDS = ('noisy', 'striped', 'gradient', 'checkered')
COLOR_JITTER = 12  # per channel, uniform in [-12, 12]
PIXEL_NOISE_STD = 4.0


# ---------------------------------------------------------------------------------------
# Shapes: outlines in unit coordinates (inside the unit circle), y pointing down.

def _regular_polygon(n: int) -> np.ndarray:
    angles = -np.pi / 2 + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _fit_unit_circle(points: np.ndarray) -> np.ndarray:
    """Centre the points' bounding box at 0 and scale them to a maximum radius of 1."""
    points = points - (points.max(0) + points.min(0)) / 2
    return points / np.linalg.norm(points, axis=1).max()


def _star_outline(tips: int = 5, inner_radius: float = 0.45) -> np.ndarray:
    angles = -np.pi / 2 + np.pi * np.arange(2 * tips) / tips
    radii = np.where(np.arange(2 * tips) % 2 == 0, 1.0, inner_radius)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _heart_outline() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return _fit_unit_circle(np.stack([x, y], axis=1))


def _cross_outline(half_width: float = 0.3) -> np.ndarray:
    w = half_width
    quarter = [(w, -1), (w, -w), (1, -w)]
    points = []
    for k in range(4):  # rotate the quarter by k * 90 degrees
        c, s = np.cos(k * np.pi / 2), np.sin(k * np.pi / 2)
        points += [(c * x - s * y, s * x + c * y) for x, y in quarter]
    return _fit_unit_circle(np.array(points))


def _arrow_outline() -> np.ndarray:
    points = [(-1, -0.2), (0.2, -0.2), (0.2, -0.55), (1, 0), (0.2, 0.55), (0.2, 0.2), (-1, 0.2)]
    return _fit_unit_circle(np.array(points, dtype=float))


_CIRCLE = _regular_polygon(48)
_FIXED_OUTLINES = {
    'circle': [(_CIRCLE, 1)],
    'square': [(_regular_polygon(4), 1)],
    'triangle': [(_regular_polygon(3), 1)],
    'star': [(_star_outline(), 1)],
    'hexagon': [(_regular_polygon(6), 1)],
    'pentagon': [(_regular_polygon(5), 1)],
    'cross': [(_cross_outline(), 1)],
    'heart': [(_heart_outline(), 1)],
    # a disc with an offset smaller disc cut out of it
    'crescent': [(_CIRCLE, 1), (_CIRCLE * 0.8 + np.array([0.4, 0.0]), 0)],
    'arrow': [(_arrow_outline(), 1)],
}


def shape_parts(name: str, rng: np.random.Generator) -> list:
    """The (polygon (N, 2), fill 0/1) parts that draw the class ``name``, painted in order.
    Ellipses and diamonds draw a random aspect from ``rng``; other shapes draw nothing."""
    if name == 'ellipse':
        return [(_CIRCLE * np.array([1.0, rng.uniform(0.4, 0.7)]), 1)]
    if name == 'diamond':
        half_width = rng.uniform(0.45, 0.75)
        return [(np.array([(0, -1), (half_width, 0), (0, 1), (-half_width, 0)]), 1)]
    return _FIXED_OUTLINES[name]


def rasterize(parts: list, center: np.ndarray, diameter: float, angle: float,
              image_size: int) -> np.ndarray:
    """Bool mask (H, W) of a shape with its parts rotated by ``angle`` (radians), scaled to
    ``diameter`` px and moved to ``center`` (x, y px)."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    canvas = Image.new('L', (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    for outline, fill in parts:
        xy = outline @ rotation.T * (diameter / 2) + center
        draw.polygon(xy.ravel().tolist(), fill=fill)
    return np.asarray(canvas).astype(bool)


# ---------------------------------------------------------------------------------------
# Colours and backgrounds

def _muted_color(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation, mid-brightness RGB colour, so that every object colour stands out."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.7))
    return np.array(rgb) * 255


def draw_background(kind: str, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Float RGB image (H, W, 3) in [0, 255] of a texture (one of ``BACKGROUNDS``) of two
    muted colours."""
    color_a, color_b = _muted_color(rng), _muted_color(rng)
    coords = np.arange(image_size, dtype=float)
    x, y = np.meshgrid(coords, coords)
    angle = rng.uniform(0, np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)  # position along a random direction
    if kind == 'noisy':
        grid = int(rng.integers(4, 17))
        coarse = Image.fromarray(rng.random((grid, grid)).astype(np.float32))  # mode F
        weight = np.asarray(coarse.resize((image_size, image_size), Image.BILINEAR))
        weight = weight + rng.normal(0, 0.1, weight.shape)
    elif kind == 'striped':
        period = rng.uniform(6, 20)
        weight = ((along / period) % 1.0 < 0.5).astype(float)
    elif kind == 'gradient':
        weight = (along - along.min()) / (along.max() - along.min())
    elif kind == 'checkered':
        across = -x * np.sin(angle) + y * np.cos(angle)
        cell = rng.uniform(8, 24)
        weight = ((np.floor(along / cell) + np.floor(across / cell)) % 2).astype(float)
    else:
        raise ValueError(f'unknown background kind {kind!r}; expected one of {BACKGROUNDS}')
    return color_a + weight[..., None] * (color_b - color_a)


def jittered_color(rgb, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` (3,) moved by an integer in [-COLOR_JITTER, COLOR_JITTER] per channel."""
    return np.array(rgb) + rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3)


def add_pixel_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A float image (H, W, 3) plus Gaussian noise (std ``PIXEL_NOISE_STD``), as uint8."""
    image = image + rng.normal(0, PIXEL_NOISE_STD, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def grow_mask(mask: np.ndarray) -> np.ndarray:
    """The mask dilated by one pixel (4-neighbourhood)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


class ClassBag:
    """Draws class indices in ``range(num_classes)`` from shuffled copies of all of them, so
    that classes appear with equal frequencies."""

    def __init__(self, num_classes: int, rng: np.random.Generator):
        self.num_classes = num_classes
        self.rng = rng
        self.pending = []

    def draw(self) -> int:
        if not self.pending:
            self.pending = self.rng.permutation(self.num_classes).tolist()
        return self.pending.pop()
