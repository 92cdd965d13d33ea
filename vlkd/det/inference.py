"""Detect any list of class names with a trained open-vocabulary detector.

:class:`OpenVocabDetector` is the Python API (``tools/infer.py`` is its command line): build
it from a config and a checkpoint, give it class names or a vocabulary file, and call it on
images. :func:`coco_detections` writes results in the COCO format.
"""
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope, init_default_scope
from PIL import Image, ImageDraw
from torch import Tensor

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from .vocabulary import check_class_names, read_vocabulary_file

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


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


def load_detector_weights(model: torch.nn.Module, checkpoint) -> Path:
    """Load a training checkpoint (file or work_dir) into ``model``, strictly.

    Every weight of the model must be in the checkpoint with the same shape (mmengine's
    non-strict loading would keep random weights silently). Extra checkpoint entries are
    ignored. Returns the checkpoint file.
    """
    path = resolve_checkpoint(checkpoint)
    stored = torch.load(path, map_location='cpu', weights_only=True)
    state = stored.get('state_dict', stored) if isinstance(stored, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{path} holds no state_dict.')
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    mismatched = [f'{key}: checkpoint {tuple(state[key].shape)}, model {tuple(own[key].shape)}'
                  for key in own if key in state and state[key].shape != own[key].shape]
    if mismatched:
        hint = (' The class embeddings of the config have another dimension than those the '
                'checkpoint was trained with: the vocabulary (teacher or embedding file) is '
                "not the checkpoint's." if any('projection' in m for m in mismatched) else '')
        raise ValueError(f'{path} does not fit the model: {"; ".join(mismatched[:5])}.{hint}')
    if missing:
        raise ValueError(f'{path} lacks {len(missing)} weights of the model (e.g. '
                         f'{missing[:5]}): it was trained with another config.')
    model.load_state_dict(state, strict=False)
    return path


def list_images(path) -> List[Path]:
    """``path`` itself if it is a file, else the image files under the folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f'{path} is neither an image file nor a folder.')
    images = sorted(p for p in path.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f'No images ({", ".join(IMAGE_SUFFIXES)}) under {path}.')
    return images


class OpenVocabDetector:
    """A detector with a text-embedding classifier, queried with class names.

    Example::

        detector = OpenVocabDetector.from_config('configs/vild/vild_r18_fpn_shapes.py',
                                                 'work_dirs/vild_r18_fpn_shapes',
                                                 classes=['star', 'moon', 'circle'])
        result = detector('image.png')   # dict of bboxes (N,4), scores (N,), labels, names
    """

    def __init__(self, model, cfg: Config):
        self.model = model.eval()
        self.cfg = cfg
        self.file_pipeline = inference_pipeline(cfg)
        self.array_pipeline = inference_pipeline(cfg, from_array=True)

    @classmethod
    def from_config(cls, config: Union[str, Config], checkpoint, device: str = 'cpu',
                    classes: Optional[Sequence[str]] = None,
                    vocabulary: Optional[str] = None) -> 'OpenVocabDetector':
        """Build the detector of ``config`` with the weights of ``checkpoint`` (a file or a
        work_dir). The vocabulary is the config's test classes, or ``classes``, or the
        vocabulary file ``vocabulary`` (see :meth:`set_vocabulary_file`)."""
        if classes is not None and vocabulary is not None:
            raise ValueError('Give classes or a vocabulary file, not both.')
        cfg = config if isinstance(config, Config) else Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'vlkd'))
        model = MODELS.build(cfg.model)
        load_detector_weights(model, checkpoint)
        detector = cls(model.to(device), cfg)
        if vocabulary is not None:
            detector.set_vocabulary_file(vocabulary)
        elif classes is not None:
            detector.set_classes(classes)
        return detector

    @property
    def bbox_head(self):
        return self.model.roi_head.bbox_head

    @property
    def classes(self) -> List[str]:
        return list(self.bbox_head.test_classes)

    def set_classes(self, names: Sequence[str], embeddings: Optional[Tensor] = None) -> None:
        """Use ``names`` as the vocabulary: embedded by the detector's vocabulary (its
        teacher or embedding file), or given as L2-normalised ``embeddings`` (C, D)."""
        self.bbox_head.set_test_vocabulary(check_class_names(names, 'class list'), embeddings)

    def set_vocabulary_file(self, path) -> None:
        """Use the classes of a vocabulary file: a text file with one name per line, or a
        class-embedding file (``tools/embed_text.py``) made with the detector's teacher.
        Heads that encode a prompt of the names themselves (GLIP-style) take text files only."""
        vocabulary = getattr(self.bbox_head, 'vocabulary', None)
        if vocabulary is None:
            names, embeddings = read_vocabulary_file(path)
            if embeddings is not None:
                raise ValueError(
                    f'{path} is a class-embedding file, and {type(self.bbox_head).__name__} '
                    'scores regions against the tokens of a prompt of the class names, not '
                    'against class embeddings: give a text file with one name per line.')
            self.set_classes(names)
            return
        names, embeddings = read_vocabulary_file(path, embed_dim=self.bbox_head.embed_dim,
                                                 teacher_fingerprint=vocabulary.fingerprint)
        self.set_classes(names, embeddings)

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


def coco_detections(images: Iterable[dict], classes: Sequence[str]) -> Dict[str, list]:
    """A COCO-format dict of detections.

    Args:
        images: dicts with ``file_name``, ``width``, ``height`` and ``result`` (the dict
            :class:`OpenVocabDetector` returns).
        classes: the vocabulary; class ``i`` is category id ``i + 1``.

    Returns:
        ``images`` (id, file_name, width, height), ``categories`` (id, name) and
        ``annotations`` (id, image_id, category_id, bbox [x, y, w, h] in pixels, area,
        score): loadable by pycocotools as a dataset, and its ``annotations`` are a
        COCO results list.
    """
    out = dict(images=[], categories=[dict(id=i + 1, name=name)
                                      for i, name in enumerate(classes)], annotations=[])
    for image_id, image in enumerate(images, start=1):
        out['images'].append(dict(id=image_id, file_name=str(image['file_name']),
                                  width=int(image['width']), height=int(image['height'])))
        result = image['result']
        for box, score, label in zip(result['bboxes'], result['scores'], result['labels']):
            x1, y1, x2, y2 = (float(v) for v in box)
            out['annotations'].append(dict(
                id=len(out['annotations']) + 1, image_id=image_id, category_id=int(label) + 1,
                bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                area=round((x2 - x1) * (y2 - y1), 2), score=round(float(score), 5)))
    return out


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
