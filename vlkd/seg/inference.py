"""Segment an image with any list of class names, and draw the result.

Example::

    segmenter = OpenVocabSegmenter.from_config(
        'configs/seg/deeplabv3plus_r18_combined_shapes.py',
        'work_dirs/deeplabv3plus_r18_combined_shapes')
    segmenter.set_classes(['star', 'moon', 'circle'])
    result = segmenter('image.png')      # labels (H, W), scores (H, W), classes
    draw_segmentation(read_rgb('image.png'), result).save('out.png')

Works with every model that has a test vocabulary (``set_test_vocabulary``): the students
of :class:`OpenVocabEncoderDecoder` and the teacher's :class:`TeacherZeroShotSegmentor`.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import load_checkpoint
from PIL import Image, ImageDraw
from torch import Tensor

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from vlkd.teachers.class_names import check_class_names

BACKGROUND_COLOUR = (0, 0, 0)
# distinct colours for the classes, in vocabulary order (background: no overlay)
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
           (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
           (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)]


def inference_pipeline(cfg: Config, from_array: bool = False) -> Compose:
    """The config's test pipeline without mask loading; ``from_array`` reads BGR arrays
    (``img``) instead of files (``img_path``)."""
    dataset = cfg.test_dataloader.dataset
    steps = [dict(t) for t in dataset.pipeline if 'Annotations' not in t['type']]
    if 'LoadImageFromFile' not in steps[0]['type']:
        raise ValueError('The test pipeline must start with LoadImageFromFile.')
    if from_array:
        steps[0] = dict(type='mmseg.LoadImageFromNDArray')
    with DefaultScope.overwrite_default_scope(dataset.get('_scope_')):
        return Compose(steps)


class OpenVocabSegmenter:
    """An open-vocabulary segmentation model queried with class names.

    If the model's own vocabulary has a background class (``background_class``), it is
    kept in every vocabulary set with :meth:`set_classes`, so that pixels of none of the
    named classes can be background.
    """

    def __init__(self, model, cfg: Config, background_class: str = 'background'):
        if not hasattr(model, 'set_test_vocabulary'):
            raise TypeError(f'{type(model).__name__} has no test vocabulary: open-vocabulary '
                            'segmentation needs OpenVocabEncoderDecoder or '
                            'TeacherZeroShotSegmentor.')
        self.model = model.eval()
        self.cfg = cfg
        self.background = background_class if background_class in self.classes else None
        self.file_pipeline = inference_pipeline(cfg)
        self.array_pipeline = inference_pipeline(cfg, from_array=True)

    @classmethod
    def from_config(cls, config: str, checkpoint: Optional[str] = None, device: str = 'cpu'):
        """The model of ``config``, with the weights of ``checkpoint`` (a file or a
        work_dir; None for models that load their own, e.g. the teacher's zero-shot)."""
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'vlkd'))
        model = MODELS.build(cfg.model)
        if checkpoint is not None:
            load_checkpoint(model, str(resolve_checkpoint(checkpoint)), map_location='cpu',
                            strict=True, logger='silent')
        return cls(model.to(device), cfg)

    @property
    def classes(self) -> List[str]:
        head = getattr(self.model, 'decode_head', self.model)
        return list(getattr(head, 'test_classes', None) or head.classes)

    def set_classes(self, names: Sequence[str], embeddings: Optional[Tensor] = None) -> None:
        """Segment ``names`` (embedded by the model's teacher, or ``embeddings`` (C, D)
        from a class-embedding file); the background class is added first if missing."""
        names = check_class_names(names, 'class list')
        if self.background is not None and self.background not in names:
            names = [self.background] + names
            if embeddings is not None:  # the background row is embedded by the model
                raise ValueError(f'Give {self.background!r} in the class list (and its '
                                 'embedding) when passing embeddings.')
        self.model.set_test_vocabulary(names, embeddings)

    @torch.no_grad()
    def __call__(self, image: Union[str, Path, np.ndarray]) -> dict:
        """Segment an image file or a BGR uint8 array (H, W, 3).

        Returns:
            dict: ``labels`` int64 (H, W) indices into ``classes``, ``scores`` float32
            (H, W) the softmax probability of the label, ``classes`` the vocabulary.
        """
        if isinstance(image, (str, Path)):
            if not Path(image).is_file():
                raise FileNotFoundError(f'Image {image} does not exist.')
            data = self.file_pipeline(dict(img_path=str(image)))
        else:
            data = self.array_pipeline(dict(img=image))
        sample = self.model.test_step(dict(inputs=[data['inputs']],
                                           data_samples=[data['data_samples']]))[0]
        probs = sample.seg_logits.data.float().softmax(dim=0)
        scores, labels = probs.max(dim=0)
        return dict(labels=labels.cpu().numpy(), scores=scores.cpu().numpy(),
                    classes=self.classes)


def draw_segmentation(image_rgb: np.ndarray, result: dict, alpha: float = 0.5,
                      scale: int = 1, background_class: str = 'background') -> Image.Image:
    """The image with a colour overlay of the labels (none on background) and a legend of
    the classes present (colour, name, share of the pixels), enlarged ``scale`` times."""
    labels, classes = np.asarray(result['labels']), list(result['classes'])
    if labels.shape != image_rgb.shape[:2]:
        raise ValueError(f'labels {labels.shape} do not match the image {image_rgb.shape[:2]}')
    colours = np.array([BACKGROUND_COLOUR if name == background_class
                        else PALETTE[i % len(PALETTE)] for i, name in enumerate(classes)],
                       dtype=np.float32)
    overlay = image_rgb.astype(np.float32)
    painted = np.array([name != background_class for name in classes])[labels]
    overlay[painted] = (1 - alpha) * overlay[painted] + alpha * colours[labels][painted]
    canvas = Image.fromarray(overlay.round().astype(np.uint8))
    if scale != 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)

    present = [(i, (labels == i).mean()) for i in np.unique(labels)]
    row = 14
    legend_width = 8 + max([len(f'{classes[i]} 100%') for i, _ in present] + [8]) * 7
    height = max(canvas.height, row * len(present) + 8)
    out = Image.new('RGB', (canvas.width + legend_width, height), (255, 255, 255))
    out.paste(canvas, (0, 0))
    draw = ImageDraw.Draw(out)
    for k, (i, share) in enumerate(present):
        x, y = canvas.width + 4, 4 + k * row
        draw.rectangle([x, y, x + 10, y + 10], fill=tuple(int(c) for c in colours[i]),
                       outline=(0, 0, 0))
        draw.text((x + 14, y - 1), f'{classes[i]} {100 * share:.0f}%', fill=(0, 0, 0))
    return out


def read_rgb(path) -> np.ndarray:
    image = mmcv.imread(str(path), channel_order='rgb')
    if image is None:
        raise FileNotFoundError(f'Cannot read image {path}.')
    return image
