"""Teachers backed by a transformers ``CLIPModel``, loaded from a local directory.

A directory written by ``save_pretrained`` (or a downloaded Hugging Face snapshot such as
``openai/clip-vit-base-patch32``) holds ``config.json``, the weights, the tokenizer files and
usually ``preprocessor_config.json``; everything is read with ``local_files_only=True``, so
nothing is ever fetched from the hub. A ``CLIPConfig`` dict instead builds a model with
random weights (tests, or a tower about to be trained), tokenized with the CLIP BPE
vocabulary that ships with open_clip.
"""
import json
import logging
from pathlib import Path
from typing import List, Optional, Tuple

import open_clip
import torch
from mmengine.logging import print_log
from torch import Tensor
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, _plain
from .base import Teacher, stride_multiple
from .dense import DenseFeatures, hf_clip_vit_dense
from .templates import Templates

# open_clip's names of CLIP's two special tokens -> the names transformers' CLIPTokenizer uses
_SPECIAL_TOKENS = {'<start_of_text>': '<|startoftext|>', '<end_of_text>': '<|endoftext|>'}
# config entries that say where or when a model was saved, not what it computes
_PROVENANCE_KEYS = {'_name_or_path', 'transformers_version', 'architectures', 'dtype',
                    'torch_dtype', '_commit_hash', 'output_hidden_states', 'return_dict'}


def clip_bpe_tokenizer() -> CLIPTokenizer:
    """transformers' CLIPTokenizer over the CLIP BPE vocabulary shipped with open_clip (the
    49,408-token vocabulary of OpenAI's CLIP): the same token ids as open_clip's
    SimpleTokenizer, with the end-of-text token as padding."""
    bpe = open_clip.SimpleTokenizer()
    vocab = {_SPECIAL_TOKENS.get(token, token): index for token, index in bpe.encoder.items()}
    merges = [pair for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def _check_model_dir(model_dir) -> Path:
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        hub_like = len(Path(str(model_dir)).parts) == 2 and not str(model_dir).startswith('.')
        hint = (f' If {model_dir!r} is a Hugging Face hub id, download it yourself (e.g. '
                f'`huggingface-cli download {model_dir} --local-dir DIR`) and pass DIR'
                if hub_like else '')
        raise FileNotFoundError(f'HFCLIPTeacher: no directory {path}.{hint}; vlkd never '
                                'downloads weights.')
    config_file = path / 'config.json'
    if not config_file.is_file():
        raise ValueError(f'{path} is not a transformers model directory: it has no '
                         'config.json. Give a directory written by CLIPModel.save_pretrained '
                         'or a downloaded CLIP snapshot.')
    try:
        model_type = json.loads(config_file.read_text()).get('model_type')
    except ValueError as err:
        raise ValueError(f'{config_file} is not valid JSON: {err}') from err
    if model_type != 'clip':
        raise ValueError(f'{path} holds a {model_type!r} model, not a CLIP model '
                         "(config.json model_type must be 'clip'); HFCLIPTeacher loads "
                         'transformers CLIPModel directories.')
    return path


def _pixel_stats(model_dir: Optional[Path]) -> Tuple[tuple, tuple]:
    """(mean, std) in 0..255 from the directory's image processor, CLIP's if it has none."""
    if model_dir is None or not (model_dir / 'preprocessor_config.json').is_file():
        if model_dir is not None:
            print_log(f'{model_dir} has no preprocessor_config.json: using CLIP\'s pixel mean '
                      'and std.', logger='current', level=logging.WARNING)
        return CLIP_PIXEL_MEAN, CLIP_PIXEL_STD
    processor = CLIPImageProcessor.from_pretrained(str(model_dir), local_files_only=True)
    return (tuple(255 * m for m in processor.image_mean),
            tuple(255 * s for s in processor.image_std))


def _definition(config: dict) -> dict:
    """The config without provenance entries (recursively), for the fingerprint."""
    return {key: _definition(value) if isinstance(value, dict) else value
            for key, value in config.items() if key not in _PROVENANCE_KEYS}


@MODELS.register_module()
class HFCLIPTeacher(Teacher):
    """A transformers ``CLIPModel`` as a teacher.

    Text: the tokenizer pads / truncates to the text tower's ``max_position_embeddings``;
    ``get_text_features``. Images: ``get_image_features`` at the tower's ``image_size``
    with the image processor's mean / std. Dense: MaskCLIP on the vision tower
    (:func:`~vlkd.teachers.dense.hf_clip_vit_dense`).

    Args:
        model_dir: local directory of a saved CLIPModel (``config.json``, weights,
            tokenizer files, optionally ``preprocessor_config.json``); or
        config: a ``CLIPConfig`` dict (``text_config``, ``vision_config``,
            ``projection_dim``, ...) for a model with random weights.
        tokenizer_dir: local directory of the tokenizer files, if not ``model_dir``; for
            ``config`` models the default is the CLIP BPE (:func:`clip_bpe_tokenizer`).
        templates, region_batch_size: see :class:`~vlkd.teachers.Teacher`.
    """

    def __init__(self, model_dir: Optional[str] = None, config: Optional[dict] = None,
                 tokenizer_dir: Optional[str] = None, templates: Templates = 'photo',
                 region_batch_size: int = 256):
        if (model_dir is None) == (config is None):
            raise ValueError('Give exactly one of model_dir (a local CLIPModel directory) and '
                             f'config (a CLIPConfig dict); got model_dir={model_dir!r}, '
                             f'config={config!r}.')
        path = None if model_dir is None else _check_model_dir(model_dir)
        if path is not None:
            try:
                model = CLIPModel.from_pretrained(str(path), local_files_only=True,
                                                  dtype=torch.float32)
            except (OSError, ValueError) as err:
                raise ValueError(f'Cannot load a CLIPModel from {path}: {err}') from err
        else:
            model = CLIPModel(CLIPConfig(**_plain(config)))
            print_log('HFCLIPTeacher(config=...) has random weights: give model_dir=DIR for a '
                      'real teacher.', logger='current', level=logging.WARNING)
        source = tokenizer_dir if tokenizer_dir is not None else path
        if source is None:
            tokenizer = clip_bpe_tokenizer()
        else:
            try:
                tokenizer = CLIPTokenizer.from_pretrained(str(source), local_files_only=True)
            except (OSError, ValueError, TypeError) as err:
                raise ValueError(f'Cannot load a CLIP tokenizer from {source}: {err}. Save it '
                                 'next to the model (tokenizer.save_pretrained(DIR)) or pass '
                                 'tokenizer_dir.') from err
        mean, std = _pixel_stats(path)
        vision = model.config.vision_config
        super().__init__(image_size=vision.image_size, embed_dim=model.config.projection_dim,
                         pixel_mean=mean, pixel_std=std, templates=templates,
                         region_batch_size=region_batch_size)
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = model.config.text_config.max_position_embeddings
        definition = json.dumps(_definition(model.config.to_dict()), sort_keys=True,
                                default=str)
        self._identity_text = (f'HFCLIPTeacher|{definition}|tokenizer='
                               f'{type(tokenizer).__name__}(vocab={len(tokenizer)})')
        self.freeze()

    def _text_features(self, texts: List[str]) -> Tensor:
        tokens = self.tokenizer(texts, padding='max_length', truncation=True,
                                max_length=self.context_length, return_tensors='pt')
        return self.model.get_text_features(input_ids=tokens['input_ids'].to(self.device),
                                            attention_mask=tokens['attention_mask']
                                            .to(self.device)).pooler_output

    def _image_features(self, pixels: Tensor) -> Tensor:
        return self.model.get_image_features(pixel_values=pixels).pooler_output

    def _identity(self) -> str:
        return self._identity_text

    def _dense_input_size(self, height: int, width: int) -> Tuple[int, int]:
        return stride_multiple(height, width, self.model.config.vision_config.patch_size)

    def _dense_features(self, pixels: Tensor) -> DenseFeatures:
        return hf_clip_vit_dense(self.model.vision_model, self.model.visual_projection, pixels)
