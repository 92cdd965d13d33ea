"""Teachers pretrained by vlkd: checkpoints written by ``tools/train.py`` with a
``configs/pretrain`` config.

mmengine stores the training config as text in ``checkpoint['meta']['cfg']``; the model is
rebuilt from its ``model`` entry and loaded with ``checkpoint['state_dict']``, so a
checkpoint file is all a student config needs to name: ``dict(type='VLKDTeacher',
checkpoint=...)``. :func:`VLKDTeacher` returns the adapter of the pretrainer it finds:

- ``CLIPPretrainer``: :class:`CLIPCheckpointTeacher`, its open_clip towers;
- ``VLPModel``: :class:`VLPCheckpointTeacher`, the recipe's joint embedding space (CLIP-style
  ITC, ALBEF's unimodal towers and projections, VLMo in dual-encoder mode, FDT, UniCL).
  Recipes without one (ViLT, UNITER, SimVLM, ...: they only score fused pairs) or without a
  pixel image tower (regions, video) are refused with the reason.

Dense embeddings: CLIP checkpoints use MaskCLIP on their open_clip tower; VLP recipes put
their patch (or grid) tokens through the joint space's image projection (FDT's token
mixtures have no per-location form and are refused).
"""
import json
import math
from pathlib import Path
from typing import Callable, List, Tuple

import torch
from mmengine.config import Config
from torch import Tensor, nn

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from vlkd.vlp.encoders import ViTPatchEncoder
from vlkd.vlp.tasks.contrastive import ImageTextContrastTask
from .base import Teacher
from .dense import DenseFeatures
from .open_clip_teacher import OpenCLIPModelTeacher
from .templates import Templates


def _read_checkpoint(path: Path) -> dict:
    """The checkpoint dict at ``path``, checked to be a vlkd training checkpoint."""
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise ValueError(f'Cannot read {path} as a torch checkpoint ({type(err).__name__}: '
                         f'{err}). VLKDTeacher takes checkpoints written by tools/train.py '
                         'with a configs/pretrain config.') from err
    cfg_text = checkpoint.get('meta', {}).get('cfg') if isinstance(checkpoint, dict) else None
    if not isinstance(cfg_text, str) or 'state_dict' not in checkpoint:
        raise ValueError(
            f'{path} is not a vlkd checkpoint: it lacks the training config (meta.cfg) or the '
            'state_dict that mmengine writes. Give a checkpoint written by tools/train.py with '
            'a configs/pretrain config, or load open_clip weights with OpenCLIPTeacher.')
    return checkpoint


def _pixel_stats(preprocessor) -> tuple:
    """(mean, std) in 0..255 RGB of the pretrainer's ImgDataPreprocessor (0, 1 if it does
    not normalise)."""
    if not getattr(preprocessor, '_enable_normalize', False):
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return tuple(preprocessor.mean.flatten().tolist()), tuple(preprocessor.std.flatten().tolist())


def _architecture(model_cfg: dict, keys) -> str:
    """What defines the embeddings besides the weights, as stable text."""
    return json.dumps({key: model_cfg.get(key) for key in keys}, sort_keys=True, default=str)


class CLIPCheckpointTeacher(OpenCLIPModelTeacher):
    """The open_clip image and text towers of a trained ``CLIPPretrainer``."""

    def __init__(self, pretrainer: nn.Module, model_cfg: dict, path: Path,
                 templates: Templates, region_batch_size: int):
        if templates is None:
            templates = (pretrainer.zero_shot or {}).get('templates', 'photo')
        mean, std = _pixel_stats(pretrainer.data_preprocessor)
        architecture = _architecture(model_cfg, ('model_cfg', 'model_name'))
        super().__init__(pretrainer.clip, pretrainer.tokenizer,
                         identity=f'VLKDTeacher|{architecture}', pixel_mean=mean,
                         pixel_std=std, templates=templates,
                         region_batch_size=region_batch_size)
        self.checkpoint_path = str(path)


class VLPCheckpointTeacher(Teacher):
    """The joint embedding space of a trained ``VLPModel`` recipe: its image tower and
    contrastive projections (``VLPModel.encode_image``) and its text tower
    (``VLPModel.encode_text``). Only the backbone and the joint-space objective are kept;
    the momentum copy and the other objectives' heads are dropped."""

    def __init__(self, pretrainer: nn.Module, model_cfg: dict, path: Path,
                 templates: Templates, region_batch_size: int):
        if pretrainer.joint_space is None:
            raise ValueError(
                f'{path} holds a {model_cfg.get("type")} recipe with objectives '
                f'{list(pretrainer.tasks)} and no joint image-text embedding space: it '
                'scores fused image-text pairs but cannot embed an image or a text alone, '
                'which a teacher must. Teach with a recipe that has a contrastive objective '
                '(CLIP, ALBEF, VLMo, FDT, UniCL, FLAVA).')
        if pretrainer.image_size is None:
            raise ValueError(f'{path} holds a recipe whose visual inputs are regions or '
                             'video, not pixels: a teacher embeds image crops.')
        if templates is None:
            templates = (pretrainer.zero_shot or {}).get('templates', 'photo')
        pretrainer.momentum = None
        pretrainer.tasks = nn.ModuleDict({pretrainer.joint_space:
                                          pretrainer.tasks[pretrainer.joint_space]})
        with torch.no_grad():
            embed_dim = pretrainer.eval().encode_text(['a']).shape[-1]
        mean, std = _pixel_stats(pretrainer.data_preprocessor)
        super().__init__(image_size=pretrainer.image_size, embed_dim=embed_dim,
                         pixel_mean=mean, pixel_std=std, templates=templates,
                         region_batch_size=region_batch_size)
        self.model = pretrainer
        keys = [key for key in model_cfg if key not in ('zero_shot', 'type')]
        self._identity_text = f'VLKDTeacher|VLPModel|{_architecture(model_cfg, keys)}'
        self.checkpoint_path = str(path)
        self.freeze()

    def _text_features(self, texts: List[str]) -> Tensor:
        return self.model.encode_text(texts)

    def _image_features(self, pixels: Tensor) -> Tensor:
        return self.model.encode_image(pixels)

    def _identity(self) -> str:
        return self._identity_text

    def _dense_input_size(self, height: int, width: int) -> Tuple[int, int]:
        self._patch_projection()  # refuse recipes without one before any work
        return self.image_size, self.image_size

    def _dense_features(self, pixels: Tensor) -> DenseFeatures:
        backbone = self.model.backbone
        count = backbone.unit_valid_mask(pixels).shape[1]  # patches / grid cells: last tokens
        side = math.isqrt(count)
        if side * side != count:
            raise ValueError(f'The image tower gives {count} patch tokens, not a square grid.')
        tokens = self._patch_projection()(backbone.encode_image(pixels).tokens[:, -count:])
        return DenseFeatures(tokens.transpose(1, 2).reshape(len(pixels), -1, side, side))

    def _patch_projection(self) -> Callable[[Tensor], Tensor]:
        """The joint space's image projection, applied to every patch token."""
        task = self.model.tasks[self.model.joint_space]
        if isinstance(task, ImageTextContrastTask):
            if task.image_projection is not None:
                return task.image_projection
            encoder = getattr(self.model.backbone, 'image_encoder', None)
            if isinstance(encoder, ViTPatchEncoder) and encoder.embed_dim is not None:
                return lambda tokens: tokens @ encoder.vit.proj  # the CLIP tower's own
        raise ValueError(
            f'The {type(task).__name__} joint space of {self.checkpoint_path} has no '
            'projection that applies to single patch tokens, so it gives no dense '
            'embeddings. Dense teachers: CLIP-style contrastive recipes (ImageTextContrastTask '
            'and its ALBEF / UniCL variants) and CLIP checkpoints.')


# the adapter of each pretrainer type a vlkd checkpoint can hold
_ADAPTERS = {'CLIPPretrainer': CLIPCheckpointTeacher, 'VLPModel': VLPCheckpointTeacher}


def load_pretrainer(checkpoint: str) -> Tuple[Path, dict, nn.Module]:
    """(checkpoint file, model config, the pretrainer rebuilt and loaded) of a vlkd
    pretraining checkpoint or work_dir."""
    try:
        path = resolve_checkpoint(checkpoint)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'VLKDTeacher: {err} Pretrain a teacher first, e.g. '
                                'python tools/train.py configs/pretrain/clip_shapes_tiny.py'
                                ) from err
    stored = _read_checkpoint(path)
    train_cfg = Config.fromstring(stored['meta']['cfg'], file_format='.py')
    model_cfg = train_cfg.model
    if str(model_cfg.get('type')).split('.')[-1] not in _ADAPTERS:
        raise ValueError(f"{path} holds a {model_cfg.get('type')!r} model; VLKDTeacher "
                         f'loads {", ".join(_ADAPTERS)} checkpoints.')
    pretrainer = MODELS.build({'_scope_': train_cfg.get('default_scope', 'vlkd'), **model_cfg})
    try:
        pretrainer.load_state_dict(stored['state_dict'])
    except RuntimeError as err:
        raise ValueError(f'The weights in {path} do not fit the model of its own config: '
                         f'{err}') from err
    return path, model_cfg.to_dict(), pretrainer


def VLKDTeacher(checkpoint: str, templates: Templates = None,
                region_batch_size: int = 256) -> Teacher:
    """The teacher of a vlkd pretraining checkpoint (see the module doc).

    Args:
        checkpoint: a checkpoint file, a work_dir whose ``last_checkpoint`` names one, or
            ``zoo://NAME``.
        templates: default class-name templates; None uses the ``zero_shot`` templates of
            the training config (what the model was validated with), else 'photo'.
        region_batch_size: crops per forward pass.
    """
    path, model_cfg, pretrainer = load_pretrainer(checkpoint)
    adapter = _ADAPTERS[str(model_cfg['type']).split('.')[-1]]
    return adapter(pretrainer, model_cfg, path, templates, region_batch_size)


MODELS.register_module(name='VLKDTeacher', module=VLKDTeacher)
