"""A teacher pretrained by vlkd: a checkpoint written by mmengine training ``CLIPPretrainer``.

mmengine stores the training config as text in ``checkpoint['meta']['cfg']``; the model is
rebuilt from its ``model`` entry and loaded with ``checkpoint['state_dict']``, so a
checkpoint file is all a student config needs to name.
"""
import json
from pathlib import Path

import torch
from mmengine.config import Config

from vlkd.checkpoint import resolve_checkpoint
from vlkd.registry import MODELS
from .open_clip_teacher import OpenCLIPModelTeacher
from .templates import Templates

_PRETRAINERS = ('CLIPPretrainer',)


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


@MODELS.register_module()
class VLKDTeacher(OpenCLIPModelTeacher):
    """The image and text towers of a ``CLIPPretrainer`` checkpoint as a teacher.

    Args:
        checkpoint: a checkpoint file, or a work_dir whose ``last_checkpoint`` names one.
        templates: default class-name templates; None uses the ``zero_shot`` templates of
            the training config (what the model was validated with), else 'photo'.
        region_batch_size: crops per forward pass.
    """

    def __init__(self, checkpoint: str, templates: Templates = None,
                 region_batch_size: int = 256):
        try:
            path = resolve_checkpoint(checkpoint)
        except FileNotFoundError as err:
            raise FileNotFoundError(f'VLKDTeacher: {err} Pretrain a teacher first, e.g. '
                                    'python tools/train.py configs/pretrain/clip_shapes_tiny.py'
                                    ) from err
        stored = _read_checkpoint(path)
        train_cfg = Config.fromstring(stored['meta']['cfg'], file_format='.py')
        model_cfg = train_cfg.model
        if str(model_cfg.get('type')).split('.')[-1] not in _PRETRAINERS:
            raise ValueError(f"{path} holds a {model_cfg.get('type')!r} model; VLKDTeacher "
                             f'loads {", ".join(_PRETRAINERS)} checkpoints.')
        pretrainer = MODELS.build(
            {'_scope_': train_cfg.get('default_scope', 'vlkd'), **model_cfg})
        try:
            pretrainer.load_state_dict(stored['state_dict'])
        except RuntimeError as err:
            raise ValueError(f'The weights in {path} do not fit the model of its own config: '
                             f'{err}') from err
        if templates is None:
            templates = (pretrainer.zero_shot or {}).get('templates', 'photo')
        # what defines the embeddings besides the weights: architecture and pixel statistics
        architecture = {key: model_cfg.get(key) for key in ('model_cfg', 'model_name')}
        mean, std = _pixel_stats(pretrainer.data_preprocessor)
        super().__init__(pretrainer.clip, pretrainer.tokenizer,
                         identity=f'VLKDTeacher|{json.dumps(architecture, sort_keys=True)}',
                         pixel_mean=mean, pixel_std=std, templates=templates,
                         region_batch_size=region_batch_size)
        self.checkpoint_path = str(path)


def _pixel_stats(preprocessor) -> tuple:
    """(mean, std) in 0..255 RGB of the pretrainer's ImgDataPreprocessor (0, 1 if it does
    not normalise)."""
    if not getattr(preprocessor, '_enable_normalize', False):
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    return tuple(preprocessor.mean.flatten().tolist()), tuple(preprocessor.std.flatten().tolist())
