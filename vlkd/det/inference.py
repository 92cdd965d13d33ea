"""Detect any list of class names with a trained open-vocabulary detector."""
from pathlib import Path
from typing import List, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import load_checkpoint
from PIL import Image, ImageDraw

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from .vocabulary import check_class_names


def inference_pipeline(cfg: Config, from_array: bool = False) -> Compose:
    """The test pipeline of a detector config without annotation loading.

    Built in the scope of the config's test dataset (``_scope_``, e.g. mmdet), as the
    dataset itself would build it. ``from_array`` reads images from BGR arrays (``img``)
    instead of files (``img_path``).
    """
    dataset = cfg.test_dataloader.dataset
    steps = [dict(t) for t in dataset.pipeline if 'LoadAnnotations' not in t['type']]
    if 'LoadImageFromFile' not in steps[0]['type']:
        raise ValueError('The test pipeline must start with LoadImageFromFile.')
    if from_array:
        steps[0] = dict(type='mmdet.LoadImageFromNDArray')
    with DefaultScope.overwrite_default_scope(dataset.get('_scope_')):
        return Compose(steps)


class OpenVocabDetector:
    """A detector with a text-embedding classifier, queried with class names.

    Example::

        detector = OpenVocabDetector.from_config('configs/vild/vild_r18_fpn_shapes.py',
                                                 'work_dirs/vild_r18_fpn_shapes')
        detector.set_classes(['star', 'moon', 'circle'])
        result = detector('image.png')   # dict of bboxes (N,4), scores (N,), labels, names
    """

    def __init__(self, model, cfg: Config):
        self.model = model.eval()
        self.cfg = cfg
        self.file_pipeline = inference_pipeline(cfg)
        self.array_pipeline = inference_pipeline(cfg, from_array=True)

    @classmethod
    def from_config(cls, config: str, checkpoint: str, device: str = 'cpu'):
        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'vlkd'))
        model = MODELS.build(cfg.model)
        load_checkpoint(model, str(resolve_checkpoint(checkpoint)), map_location='cpu',
                        logger='silent')
        return cls(model.to(device), cfg)

    @property
    def bbox_head(self):
        return self.model.roi_head.bbox_head

    @property
    def classes(self) -> List[str]:
        return list(self.bbox_head.test_classes)

    def set_classes(self, names: Sequence[str]) -> None:
        """Use ``names`` as the vocabulary (embedded by the detector's teacher)."""
        self.bbox_head.set_test_vocabulary(check_class_names(names, 'class list'))

    @torch.no_grad()
    def __call__(self, image: Union[str, Path, np.ndarray]) -> dict:
        """Detect in an image file or a BGR uint8 array (H, W, 3); boxes in its pixels."""
        if isinstance(image, (str, Path)):
            if not Path(image).is_file():
                raise FileNotFoundError(f'Image {image} does not exist.')
            data = self.file_pipeline(dict(img_path=str(image), img_id=0))
        else:
            data = self.array_pipeline(dict(img=image, img_id=0))
        batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
        result = self.model.test_step(batch)[0].pred_instances.cpu()
        labels = result.labels.numpy()
        return dict(bboxes=result.bboxes.numpy(), scores=result.scores.numpy(), labels=labels,
                    names=[self.classes[i] for i in labels])


def draw_detections(image_rgb: np.ndarray, result: dict, score_thr: float = 0.3,
                    scale: int = 1) -> Image.Image:
    """Draw boxes with ``name score`` labels on an RGB image, enlarged ``scale`` times."""
    canvas = Image.fromarray(image_rgb).convert('RGB')
    if scale != 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(0)
    palette = {}
    for box, score, name in zip(result['bboxes'], result['scores'], result['names']):
        if score < score_thr:
            continue
        colour = palette.setdefault(name, tuple(int(c) for c in rng.integers(60, 255, 3)))
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=max(1, scale))
        text = f'{name} {score:.2f}'
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        draw.rectangle([x1, y1 - (bottom - top) - 2, x1 + (right - left) + 2, y1], fill=colour)
        draw.text((x1 + 1, y1 - (bottom - top) - 2), text, fill=(0, 0, 0))
    return canvas


def read_rgb(path) -> np.ndarray:
    return mmcv.imread(str(path), channel_order='rgb')
