"""CLIPPretrainer: an open_clip CLIP model trained on image-caption pairs by mmengine.

The wrapped model is a real ``open_clip.CLIP``, built from an open_clip model config dict
(``model_cfg=dict(embed_dim=..., vision_cfg=dict(...), text_cfg=dict(...))``) or an open_clip
architecture name (``model_name='ViT-B-32'``; random weights, nothing is downloaded).
Captions arrive as strings in the data samples and are tokenized here with the model's
open_clip tokenizer (the CLIP BPE ships with open_clip).

Data flow: the pipeline packs ``inputs`` (3, S, S) uint8 BGR images at the tower's input size
S and data samples with ``text`` (and ``gt_label`` for labelled crops); the data
preprocessor converts to RGB and normalises with the CLIP mean / std.

:class:`vlkd.teachers.VLKDTeacher` rebuilds this model from the config stored in a
checkpoint, so every argument must be plain config data.
"""
from typing import Callable, List, Optional, Sequence, Union

import open_clip
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from vlkd.registry import MODELS

CLIP_PIXEL_MEAN = tuple(255 * m for m in open_clip.OPENAI_DATASET_MEAN)
CLIP_PIXEL_STD = tuple(255 * s for s in open_clip.OPENAI_DATASET_STD)


def _plain(cfg):
    """A config value (mmengine ConfigDict, tuples) as plain dicts and lists."""
    if isinstance(cfg, dict):
        return {key: _plain(value) for key, value in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [_plain(value) for value in cfg]
    return cfg


def _check_model_source(model_name: Optional[str], model_cfg: Optional[dict]) -> None:
    if (model_name is None) == (model_cfg is None):
        raise ValueError('Give exactly one of model_name (an open_clip architecture such as '
                         "'ViT-B-32') and model_cfg (dict(embed_dim=..., vision_cfg=..., "
                         f'text_cfg=...)); got model_name={model_name!r}, '
                         f'model_cfg={model_cfg!r}.')
    if model_name is not None and model_name not in open_clip.list_models():
        raise ValueError(f'{model_name!r} is not a built-in open_clip architecture (see '
                         'open_clip.list_models()). For other models give their config as '
                         'model_cfg; vlkd never fetches configs or weights from a hub.')


def build_open_clip_model(model_name: Optional[str] = None,
                          model_cfg: Optional[dict] = None) -> nn.Module:
    """An open_clip model with random weights, from an architecture name or a config dict."""
    _check_model_source(model_name, model_cfg)
    if model_cfg is not None:
        model_cfg = _plain(model_cfg)
        if model_cfg.get('text_cfg', {}).get('hf_model_name'):
            return open_clip.CustomTextCLIP(**model_cfg)
        return open_clip.CLIP(**model_cfg)
    return open_clip.create_model(model_name, pretrained=None, load_weights=False,
                                  pretrained_image=False, pretrained_text=False)


def build_tokenizer(model_name: Optional[str] = None, model_cfg: Optional[dict] = None):
    """The open_clip tokenizer of an architecture name or a model config dict."""
    _check_model_source(model_name, model_cfg)
    if model_name is not None:
        return open_clip.get_tokenizer(model_name)
    text_cfg = _plain(model_cfg).get('text_cfg', {})
    context_length = text_cfg.get('context_length', 77)
    if text_cfg.get('hf_tokenizer_name'):
        return open_clip.tokenizer.HFTokenizer(text_cfg['hf_tokenizer_name'],
                                               context_length=context_length)
    return open_clip.SimpleTokenizer(context_length=context_length)


def tower_image_size(model: nn.Module) -> int:
    """Input side (px) of an open_clip model's image tower (square inputs)."""
    size = model.visual.image_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    if size[0] != size[1]:
        raise ValueError(f'vlkd expects a square image tower input, got {size}.')
    return int(size[0])


def set_retrieval_fields(data_samples: Sequence[BaseDataElement], image_embeddings: Tensor,
                         encode_text: Callable[[List[str]], Tensor]) -> None:
    """Give each data sample the joint-space fields that retrieval reads, in place.

    ``image_embedding`` (E,) is its row of ``image_embeddings`` (B, E); when every sample
    has a ``text``, ``text_embedding`` (E,) of it; when every sample has ``texts`` (all
    captions of its image), ``text_embeddings`` (M, E). ``encode_text`` maps N strings to
    (N, E) embeddings.
    """
    for sample, embedding in zip(data_samples, image_embeddings):
        sample.image_embedding = embedding
    if all(isinstance(s.get('text'), str) for s in data_samples):
        for sample, embedding in zip(data_samples, encode_text([s.text for s in data_samples])):
            sample.text_embedding = embedding
    if all(s.get('texts') for s in data_samples):
        captions = [list(s.texts) for s in data_samples]
        embeddings = encode_text([t for texts in captions for t in texts])
        for sample, rows in zip(data_samples, embeddings.split([len(t) for t in captions])):
            sample.text_embeddings = rows


@MODELS.register_module()
class CLIPPretrainer(BaseModel):
    """Contrastive image-text pretraining of an open_clip CLIP model.

    Args:
        model_cfg: open_clip model config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``,
            optional ``quick_gelu`` / ``init_logit_scale``); or
        model_name: an open_clip architecture name (random init).
        loss: the contrastive objective, called as ``loss(image_features, text_features,
            log_scale)`` with the model's learnable ``logit_scale``; a loss with
            ``uses_labels = True`` (UniCL) is called as ``loss(image_features,
            text_features, labels, log_scale)`` with the samples' ``unicl_label``.
        zero_shot: ``dict(classes=[...], templates='shapes')``: class names and prompt
            templates (a set name of :mod:`vlkd.teachers.templates` or a list) for
            ``mode='predict'``, which classifies images by their closest class embedding.
        data_preprocessor: defaults to ``HostBatchImgDataPreprocessor`` (mmengine's
            ImgDataPreprocessor, one copy per batch) with the CLIP mean / std (0-255 scale) and
            BGR -> RGB.
        grad_checkpointing: open_clip's gradient checkpointing of both towers: each
            transformer block's activations are recomputed in the backward pass instead of
            stored (less memory, more time; same losses and gradients). open_clip leaves a
            ResNet image tower (``vision_cfg.layers`` a list) as it is.
    """

    def __init__(self, model_cfg: Optional[dict] = None, model_name: Optional[str] = None,
                 loss: dict = dict(type='ImageTextContrastiveLoss'),
                 zero_shot: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, grad_checkpointing: bool = False):
        if data_preprocessor is None:
            data_preprocessor = dict(type='vlkd.HostBatchImgDataPreprocessor',
                                     mean=CLIP_PIXEL_MEAN, std=CLIP_PIXEL_STD, bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.clip = build_open_clip_model(model_name, model_cfg)
        self.clip.set_grad_checkpointing(grad_checkpointing)
        self.tokenizer = build_tokenizer(model_name, model_cfg)
        self.contrastive_loss = MODELS.build(loss)
        self.image_size = tower_image_size(self.clip)
        if zero_shot is not None and set(zero_shot) != {'classes', 'templates'}:
            raise ValueError("zero_shot must be dict(classes=[...], templates=...), got "
                             f'keys {sorted(zero_shot)}.')
        self.zero_shot = _plain(zero_shot)

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Token ids (N, context_length) on the model's device."""
        return self.tokenizer(list(texts)).to(self.clip.logit_scale.device)

    def encode_image(self, inputs: Tensor) -> Tensor:
        """L2-normalised embeddings (B, D) of preprocessed images (B, 3, S, S)."""
        if inputs.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f'The image tower takes {self.image_size}x{self.image_size} '
                             f'inputs, got {tuple(inputs.shape[-2:])}: resize in the pipeline.')
        return F.normalize(self.clip.encode_image(inputs), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised embeddings (N, D) of strings."""
        return F.normalize(self.clip.encode_text(self.tokenize(texts)), dim=-1)

    def class_embeddings(self) -> Tensor:
        """(C, D) prompt-ensembled embeddings of the ``zero_shot`` class names."""
        # imported here: vlkd.teachers builds on this module
        from vlkd.teachers.templates import prompt_ensemble, resolve_templates
        if self.zero_shot is None:
            raise ValueError("mode='predict' classifies by class names: build CLIPPretrainer "
                             "with zero_shot=dict(classes=[...], templates='shapes').")
        templates = resolve_templates(self.zero_shot['templates'])
        return prompt_ensemble(self.encode_text, self.zero_shot['classes'], templates)

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor') -> Union[dict, list, tuple, Tensor]:
        """``mode='loss'``: dict of losses; ``'predict'``: data samples with ``pred_score``
        (C,) cosine similarities to the class embeddings and ``pred_label``, and the
        retrieval fields (see :meth:`predict`); ``'tensor'``: image embeddings (B, D), and
        text embeddings (B, D) if samples carry ``text``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            image_features = self.encode_image(inputs)
            if data_samples is None or 'text' not in data_samples[0]:
                return image_features
            return image_features, self.encode_text([s.text for s in data_samples])
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, inputs: Tensor, data_samples: List[BaseDataElement]) -> dict:
        image_features = self.clip.encode_image(inputs)
        text_features = self.clip.encode_text(self.tokenize([s.text for s in data_samples]))
        log_scale = self.clip.logit_scale
        features = (image_features, text_features)
        if getattr(self.contrastive_loss, 'uses_labels', False):
            features += (self.pair_labels(data_samples),)
        return dict(loss_itc=self.contrastive_loss(*features, log_scale),
                    logit_scale=self.contrastive_loss.logit_scale(log_scale).detach())

    def pair_labels(self, data_samples: List[BaseDataElement]) -> Tensor:
        """(B,) ``unicl_label`` of the samples: pairs with equal labels are positives."""
        missing = [i for i, sample in enumerate(data_samples) if 'unicl_label' not in sample]
        if missing:
            raise ValueError(
                f'{type(self.contrastive_loss).__name__} needs a unicl_label in every data '
                f'sample; samples {missing[:5]} have none. ShapesCaptionDataset and '
                'ImageTextDataset provide it through PackImageTextInputs.')
        return torch.stack([sample.unicl_label for sample in data_samples]).to(
            self.clip.logit_scale.device)

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[BaseDataElement]] = None) -> List[BaseDataElement]:
        """Data samples with the retrieval fields of :func:`set_retrieval_fields`
        (``image_embedding``; ``text_embedding`` / ``text_embeddings`` of their captions) and,
        with ``zero_shot`` set, ``pred_score`` (C,) and ``pred_label``."""
        image_embeddings = self.encode_image(inputs)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(image_embeddings))]
        set_retrieval_fields(data_samples, image_embeddings, self.encode_text)
        if self.zero_shot is None and 'text_embeddings' in data_samples[0]:
            return data_samples  # retrieval only
        scores = image_embeddings @ self.class_embeddings().T
        for sample, score in zip(data_samples, scores):
            sample.pred_score = score
            sample.pred_label = score.argmax()
        return data_samples
