"""Pixel-text decode head: any mmseg decode head turned into a per-pixel embedder whose
pixels are classified by cosine similarity to class-name text embeddings.

The wrapped mmseg head (FCN, DeepLabV3+'s ASPP, UPerNet, ...) is built with ``num_classes``
set to the teacher's embedding dimension D, so its last 1x1 convolution projects every
location into the text space. A pixel embedding ``p`` (L2-normalised) gets the logits
``[p·e_1, ..., p·e_C] / T`` where ``e_c`` are the class-name embeddings of the active
vocabulary; the background class, if any, can use a learned embedding instead (ViLD's
background). The training and test vocabularies are separate (``self.training`` picks
one), and :meth:`PixelTextHead.set_test_vocabulary` swaps in any class list at inference.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from torch import Tensor, nn

from vlkd.det.vocabulary import TextVocabulary
from vlkd.registry import MODELS
from vlkd.teachers.class_names import check_class_names
from .class_text import class_text_embeddings

BACKGROUND_MODES = ('learned', 'text')


@MODELS.register_module()
class PixelTextHead(BaseModule):
    """Decode head of open-vocabulary segmenters (mmseg decode-head interface).

    Args:
        decoder: config of an mmseg decode head (e.g. ``dict(type='FCNHead', in_channels=
            256, channels=64, ...)``) without ``num_classes``: it is set to D here.
        train_classes: class names of the training labels, in label order.
        test_classes: class names of the evaluated dataset, in its label order.
        vocabulary: ``dict(teacher=..., templates=...)`` of :class:`TextVocabulary`; the
            teacher is loaded to embed the names and released.
        synonyms: optional names describing a class instead of its own
            (:func:`class_text_embeddings`).
        temperature: logits are cosine similarities divided by this.
        background: 'learned' (a class named ``background_class`` uses a learned
            embedding) or 'text' (every class, background included, is its text embedding).
        background_class: name of the background class ('learned' needs it in the
            training vocabulary; a test vocabulary without it has no background).
        loss_decode: ground-truth loss (an mmseg loss config, e.g. CrossEntropyLoss with
            ``avg_non_ignore=True``: the mean over labelled pixels, whatever the share of
            ignored ones), or None to train without labels (distillation only).
        ignore_index: label of unlabelled (and, in zero-shot training, unseen) pixels.
        align_corners: of the bilinear resizing to the label size.
    """

    def __init__(self,
                 decoder: dict,
                 train_classes: Sequence[str],
                 test_classes: Sequence[str],
                 vocabulary: dict,
                 synonyms: Optional[Dict[str, Sequence[str]]] = None,
                 temperature: float = 0.05,
                 background: str = 'learned',
                 background_class: str = 'background',
                 loss_decode: Optional[dict] = dict(type='mmseg.CrossEntropyLoss',
                                                    avg_non_ignore=True, loss_weight=1.0),
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        if background not in BACKGROUND_MODES:
            raise ValueError(f'background must be one of {BACKGROUND_MODES}, got {background!r}')
        if 'num_classes' in decoder or 'out_channels' in decoder:
            raise ValueError('PixelTextHead sets the decoder\'s num_classes / out_channels to '
                             'the text embedding dimension; remove them from decoder.')
        self.train_classes = check_class_names(train_classes, 'train_classes')
        self.test_classes = check_class_names(test_classes, 'test_classes')
        if background == 'learned' and background_class not in self.train_classes:
            raise ValueError(f"background='learned' needs a class named {background_class!r} "
                             f'in train_classes {self.train_classes[:6]}...; set '
                             "background='text' for vocabularies without background.")
        self.temperature = temperature
        self.background = background
        self.background_class = background_class
        self.synonyms = dict(synonyms or {})
        self.ignore_index = ignore_index
        self.align_corners = align_corners

        self.vocabulary = TextVocabulary(**vocabulary)
        train_embeddings = self.embed_names(self.train_classes)
        test_embeddings = self.embed_names(self.test_classes)
        self.vocabulary.release()
        self.embed_dim = train_embeddings.shape[1]
        # text embeddings are recomputed (disk-cached) whenever the head is built, not saved:
        # a checkpoint serves any vocabulary
        self.register_buffer('train_embeddings', train_embeddings, persistent=False)
        self.register_buffer('test_embeddings', test_embeddings, persistent=False)
        if background == 'learned':
            self.background_embedding = nn.Parameter(torch.randn(self.embed_dim) * 0.02)

        self.decoder = MODELS.build(dict(decoder, num_classes=self.embed_dim))
        self.loss_decode = None if loss_decode is None else MODELS.build(loss_decode)

    # -- vocabulary ----------------------------------------------------------------------
    def embed_names(self, classes: Sequence[str]) -> Tensor:
        """(C, D) text embeddings of class names (with this head's synonyms)."""
        synonyms = {k: v for k, v in self.synonyms.items() if k in classes}
        return class_text_embeddings(self.vocabulary.embed, classes, synonyms)

    @property
    def classes(self) -> List[str]:
        """The active vocabulary."""
        return self.train_classes if self.training else self.test_classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def out_channels(self) -> int:
        return self.num_classes

    @property
    def text_embeddings(self) -> Tensor:
        """(C, D) text embeddings of the active vocabulary (the background class too)."""
        return self.train_embeddings if self.training else self.test_embeddings

    def set_test_vocabulary(self, classes: Sequence[str],
                            embeddings: Optional[Tensor] = None) -> None:
        """Use ``classes`` at inference; ``embeddings`` (C, D), if given, are their
        L2-normalised text embeddings (e.g. from a class-embedding file), else the head's
        teacher embeds them."""
        classes = check_class_names(classes, 'vocabulary')
        if embeddings is None:
            embeddings = self.embed_names(classes)
            self.vocabulary.release()
        if tuple(embeddings.shape) != (len(classes), self.embed_dim):
            raise ValueError(
                f'Text embeddings have shape {tuple(embeddings.shape)}, but {len(classes)} '
                f'classes of dimension {self.embed_dim} were expected: the embeddings were '
                'made for another class list or another teacher.')
        self.test_classes = classes
        self.test_embeddings = embeddings.to(self.train_embeddings)

    # -- forward -------------------------------------------------------------------------
    def embed(self, inputs: Sequence[Tensor]) -> Tensor:
        """Backbone / neck features -> L2-normalised pixel embeddings (B, D, h, w)."""
        return F.normalize(self.decoder(inputs), dim=1)

    def classifier(self) -> Tensor:
        """(C, D) embeddings the pixels are compared with: the text embeddings, with the
        learned background in the background class's row."""
        weights = self.text_embeddings
        if self.background == 'learned' and self.background_class in self.classes:
            row = self.classes.index(self.background_class)
            background = F.normalize(self.background_embedding, dim=0)
            weights = torch.cat([weights[:row], background[None], weights[row + 1:]])
        return weights

    def classify(self, embeddings: Tensor) -> Tensor:
        """Pixel embeddings (B, D, h, w) -> logits (B, C, h, w) of the active vocabulary."""
        return torch.einsum('bdhw,cd->bchw', embeddings, self.classifier()) / self.temperature

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.classify(self.embed(inputs))

    # -- mmseg decode-head interface -------------------------------------------------------
    def loss(self, inputs: Sequence[Tensor], batch_data_samples: list,
             train_cfg: Optional[dict] = None) -> Dict[str, Tensor]:
        return self.loss_by_feat(self.forward(inputs), batch_data_samples)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: list) -> Dict[str, Tensor]:
        """Ground-truth loss (if ``loss_decode``) and pixel accuracy of logits (B, C, h, w)."""
        labels = torch.stack([s.gt_sem_seg.data for s in batch_data_samples]).squeeze(1)
        seg_logits = resize(seg_logits, size=labels.shape[1:], mode='bilinear',
                            align_corners=self.align_corners)
        losses = {}
        if self.loss_decode is not None:
            losses[self.loss_decode.loss_name] = self.loss_decode(
                seg_logits, labels, ignore_index=self.ignore_index)
        losses['acc_seg'] = accuracy(seg_logits, labels, ignore_index=self.ignore_index)
        return losses

    def predict(self, inputs: Sequence[Tensor], batch_img_metas: List[dict],
                test_cfg: Optional[dict] = None) -> Tensor:
        """Logits (B, C, H, W) at the (padded) input size."""
        return self.predict_by_feat(self.forward(inputs), batch_img_metas)

    def predict_by_feat(self, seg_logits: Tensor, batch_img_metas: List[dict]) -> Tensor:
        meta = batch_img_metas[0]
        size = meta['img_shape'] if isinstance(meta['img_shape'], torch.Size) \
            else meta.get('pad_shape', meta['img_shape'])[:2]
        return resize(seg_logits, size=size, mode='bilinear', align_corners=self.align_corners)
