"""Teachers backed by an open_clip model: any open_clip architecture with local weights.

Weights only ever come from a local file: a ``pretrained`` tag such as 'openai' or
'laion2b_s34b_b79k' is refused with the instruction to download the file and pass its path.
OpenAI's own CLIP files are TorchScript archives, which ``torch.load(weights_only=True)``
refuses: :class:`OpenAICLIPTeacher` reads them with ``open_clip.load_openai_model``.
"""
import json
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import open_clip
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import (CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, build_open_clip_model,
                                 build_tokenizer, tower_image_size)
from .base import Teacher, stride_multiple
from .dense import DenseFeatures, open_clip_dense_recipe
from .templates import Templates


class OpenCLIPModelTeacher(Teacher):
    """A teacher around an already built open_clip model (``encode_image`` /
    ``encode_text`` on token ids) and its tokenizer; the adapters below build them.
    Dense embeddings: MaskCLIP on ViT and ResNet towers (:mod:`.dense`).

    Args:
        model: the open_clip model (CLIP or CustomTextCLIP), frozen here.
        tokenizer: callable mapping a list of strings to token ids (N, L).
        identity: what defines the model besides its weights (for the fingerprint).
        pixel_mean, pixel_std, templates, region_batch_size: see :class:`Teacher`.
    """

    def __init__(self, model: nn.Module, tokenizer, identity: str,
                 pixel_mean: Sequence[float] = CLIP_PIXEL_MEAN,
                 pixel_std: Sequence[float] = CLIP_PIXEL_STD, templates: Templates = 'photo',
                 region_batch_size: int = 256):
        with torch.no_grad():
            embed_dim = model.encode_text(tokenizer(['a'])).shape[-1]
        super().__init__(image_size=tower_image_size(model), embed_dim=embed_dim,
                         pixel_mean=pixel_mean, pixel_std=pixel_std, templates=templates,
                         region_batch_size=region_batch_size)
        self.model = model
        self.tokenizer = tokenizer
        self._identity_text = (f'{identity}|tokenizer={type(tokenizer).__name__}'
                               f'(context_length={getattr(tokenizer, "context_length", None)})')
        self.freeze()

    def _text_features(self, texts: List[str]) -> Tensor:
        return self.model.encode_text(self.tokenizer(texts).to(self.device))

    def _image_features(self, pixels: Tensor) -> Tensor:
        return self.model.encode_image(pixels)

    def _identity(self) -> str:
        return self._identity_text

    def _dense_input_size(self, height: int, width: int) -> Tuple[int, int]:
        stride, _ = open_clip_dense_recipe(self.model.visual)
        return stride_multiple(height, width, stride)

    def _dense_features(self, pixels: Tensor) -> DenseFeatures:
        _, dense = open_clip_dense_recipe(self.model.visual)
        return dense(pixels)


def _pixel_stats(model: nn.Module):
    """(mean, std) in 0..255 from open_clip's preprocess config, CLIP's by default."""
    cfg = open_clip.get_model_preprocess_cfg(model)
    mean = cfg.get('mean', open_clip.OPENAI_DATASET_MEAN)
    std = cfg.get('std', open_clip.OPENAI_DATASET_STD)
    return tuple(255 * m for m in mean), tuple(255 * s for s in std)


def _check_local_weights(pretrained: str, model_name: Optional[str]) -> Path:
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path
    tags = open_clip.list_pretrained_tags_by_model(model_name) if model_name else []
    if pretrained in tags:
        raise FileNotFoundError(
            f'pretrained={pretrained!r} is an open_clip download tag of {model_name}; vlkd '
            'never downloads weights. Download the weights file yourself (see '
            'open_clip.get_pretrained_url or the model card) and pass its local path as '
            'pretrained=/path/to/weights.')
    raise FileNotFoundError(
        f'pretrained={pretrained!r}: no such file. Pass the local path of an open_clip '
        'weights file (.bin, .pt, .pth or .safetensors); vlkd never downloads weights.')


def _check_architecture(model: nn.Module, model_name: str, path: Path) -> None:
    """Raise if ``model`` (loaded from ``path``) does not have the parameter shapes of the
    open_clip architecture ``model_name``."""
    if model_name not in open_clip.list_models():
        raise ValueError(f'{model_name!r} is not a built-in open_clip architecture (see '
                         'open_clip.list_models()).')
    with torch.device('meta'):  # shapes only, no memory
        reference = build_open_clip_model(model_cfg=open_clip.get_model_config(model_name))
    expected = {key: tuple(value.shape) for key, value in reference.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    differing = sorted(key for key in expected.keys() | found.keys()
                       if expected.get(key) != found.get(key))
    if differing:
        key = differing[0]
        raise ValueError(f'{path} is not a {model_name} model: {len(differing)} weights '
                         f'differ, e.g. {key} has shape {found.get(key)} in the file and '
                         f'{expected.get(key)} in {model_name}.')


@MODELS.register_module()
class OpenAICLIPTeacher(OpenCLIPModelTeacher):
    """One of OpenAI's CLIP files (a TorchScript archive such as ``ViT-B-32.pt``, or a
    plain state dict with OpenAI's keys) as a teacher.

    ``open_clip.load_openai_model`` reads the archive's weights (TorchScript loading runs no
    Python pickle) and rebuilds the architecture from their shapes as an open_clip CLIP
    with QuickGELU, in float32. Check a downloaded file's sha256 before loading it; the
    model zoo does (``Teacher.from_zoo('clip-vit-b-32-openai')``).

    Args:
        archive: local path of the file.
        model_name: optional open_clip architecture the file must match (e.g.
            ``'ViT-B-32-quickgelu'``); a mismatch is an error naming a differing weight.
        templates, region_batch_size: see :class:`~vlkd.teachers.Teacher`.
    """

    def __init__(self, archive: str, model_name: Optional[str] = None,
                 templates: Templates = 'photo', region_batch_size: int = 256):
        path = Path(archive).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"OpenAICLIPTeacher: no file {path}. Download OpenAI's archive yourself (see "
                'model_zoo/clip_teachers.yaml, or `python tools/zoo.py download '
                'clip-vit-b-32-openai`) and pass its local path.')
        try:
            model = open_clip.load_openai_model(str(path), precision='fp32', device='cpu')
        except Exception as err:  # torch.jit / torch.load / state-dict errors of any kind
            raise ValueError(f'{path} is not an OpenAI CLIP file (a TorchScript archive or a '
                             f"state dict with OpenAI's keys): {type(err).__name__}: "
                             f'{str(err)[:200]}') from err
        if model_name is not None:
            _check_architecture(model, model_name, path)
        super().__init__(model, open_clip.SimpleTokenizer(context_length=model.context_length),
                         identity=f'OpenAICLIPTeacher|{type(model.visual).__name__}|quick_gelu',
                         templates=templates, region_batch_size=region_batch_size)


@MODELS.register_module()
class OpenCLIPTeacher(OpenCLIPModelTeacher):
    """Any open_clip model as a teacher, with weights from a local file.

    Args:
        model_name: an open_clip architecture ('ViT-B-32', 'RN50', ...; see
            ``open_clip.list_models()``).
        pretrained: local weights file, or None for random weights (tests only).
        model_cfg: an open_clip model config dict instead of ``model_name`` (custom
            architectures); ``model_name`` may then be None.
        templates: default class-name templates (a set name or a list).
        region_batch_size: crops per forward pass.
    """

    def __init__(self, model_name: Optional[str] = None, pretrained: Optional[str] = None,
                 model_cfg: Optional[dict] = None, templates: Templates = 'photo',
                 region_batch_size: int = 256):
        architecture = model_name if model_cfg is None else None
        path = None if pretrained is None else _check_local_weights(pretrained, architecture)
        model = build_open_clip_model(architecture, model_cfg)
        if path is None:
            print_log(f'OpenCLIPTeacher({model_name or "model_cfg"}) has random weights: give '
                      'pretrained=/path/to/weights for a real teacher.', logger='current',
                      level=logging.WARNING)
        else:
            open_clip.load_checkpoint(model, str(path), weights_only=True)
        mean, std = _pixel_stats(model)
        source = model_name if model_cfg is None else json.dumps(model_cfg, sort_keys=True,
                                                                 default=str)
        super().__init__(model, build_tokenizer(architecture, model_cfg),
                         identity=f'OpenCLIPTeacher|{source}', pixel_mean=mean, pixel_std=std,
                         templates=templates, region_batch_size=region_batch_size)
