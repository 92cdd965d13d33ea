"""ViLD box head: regions are classified by cosine similarity to class-name text embeddings.

ViLD (Gu et al., 2022, "Open-vocabulary Object Detection via Vision and Language Knowledge
Distillation") replaces the learned classifier of a two-stage detector with text embeddings of
the class names. A region feature ``f`` is projected to the teacher's embedding space,
``r = normalize(W f)``, and its logits are ``[r·e_1, ..., r·e_C, r·e_bg] / T`` where ``e_c``
are the (fixed) text embeddings and ``e_bg`` is a learned background embedding. Box regression
is class-agnostic so that boxes of unseen classes are refined too.

The head has two vocabularies: the training one (base classes only, as in ViLD-text) and the
test one (base + novel, or any list set with :meth:`ViLDBBoxHead.set_test_vocabulary`). Which
one is active follows ``self.training``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from torch import Tensor, nn

from vlkd.registry import MODELS
from .vocabulary import TextVocabulary, check_class_names


@MODELS.register_module()
class ViLDBBoxHead(ConvFCBBoxHead):
    """Shared-FC box head with a text-embedding classifier.

    Args:
        train_classes: class names of the training set, in the dataset's label order.
        test_classes: class names used in validation and testing, in that dataset's order.
        vocabulary: ``dict(teacher=..., templates=...)`` (names embedded by the teacher,
            prompt-ensembled over the templates) or ``dict(embedding_file=...)`` (a file
            written by ``tools/embed_text.py``) for :class:`TextVocabulary`.
        temperature: logits are cosine similarities divided by this (ViLD uses 0.01).
        num_shared_fcs, fc_out_channels: as in mmdet's ``Shared2FCBBoxHead``.
        **kwargs: passed to :class:`ConvFCBBoxHead` (``roi_feat_size``, ``in_channels``,
            ``bbox_coder``, ``loss_cls``, ``loss_bbox``, ...). ``num_classes`` and
            ``reg_class_agnostic`` are set by this head.
    """

    def __init__(self,
                 train_classes: Sequence[str],
                 test_classes: Sequence[str],
                 vocabulary: dict,
                 temperature: float = 0.01,
                 num_shared_fcs: int = 2,
                 fc_out_channels: int = 1024,
                 **kwargs) -> None:
        for key in ('num_classes', 'reg_class_agnostic'):
            if key in kwargs:
                raise ValueError(f'ViLDBBoxHead sets {key} itself; remove it from the config.')
        self.train_classes = check_class_names(train_classes, 'train_classes')
        self.test_classes = check_class_names(test_classes, 'test_classes')
        super().__init__(
            num_shared_fcs=num_shared_fcs,
            fc_out_channels=fc_out_channels,
            num_classes=len(self.train_classes),
            reg_class_agnostic=True,
            with_cls=False,  # the text classifier below replaces fc_cls
            **kwargs)
        self.with_cls = True
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        self.temperature = temperature
        self.vocabulary = TextVocabulary(**vocabulary)

        train_embeddings = self.vocabulary.embed(self.train_classes)
        test_embeddings = self.vocabulary.embed(self.test_classes)
        self.vocabulary.release()
        self.embed_dim = train_embeddings.shape[1]
        self.projection = nn.Linear(self.cls_last_dim, self.embed_dim)
        self.background_embedding = nn.Parameter(torch.randn(self.embed_dim) * 0.02)
        # Recomputed from the teacher (disk-cached) whenever the head is built, so they are
        # not saved in checkpoints: a checkpoint stays valid for any vocabulary.
        self.register_buffer('train_embeddings', train_embeddings, persistent=False)
        self.register_buffer('test_embeddings', test_embeddings, persistent=False)

    # -- vocabulary ------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.train_classes if self.training else self.test_classes)

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        # mmdet's BBoxHead.__init__ assigns num_classes; the vocabularies define it here.
        pass

    @property
    def class_embeddings(self) -> Tensor:
        """(C, D) text embeddings of the active vocabulary."""
        return self.train_embeddings if self.training else self.test_embeddings

    def set_test_vocabulary(self, classes: Sequence[str],
                            embeddings: Optional[Tensor] = None) -> None:
        """Replace the test vocabulary, e.g. with class names given at inference.

        ``embeddings`` (C, D), if given, must be L2-normalised teacher text embeddings of
        ``classes``; otherwise they are computed with the head's teacher.
        """
        classes = check_class_names(classes, 'vocabulary')
        if embeddings is None:
            embeddings = self.vocabulary.embed(classes)
        if embeddings.shape != (len(classes), self.embed_dim):
            raise ValueError(
                f'Text embeddings have shape {tuple(embeddings.shape)}, but {len(classes)} '
                f'classes of dimension {self.embed_dim} were expected: the embedding file was '
                'made for another class list or another teacher.')
        self.test_classes = classes
        self.test_embeddings = embeddings.to(self.train_embeddings)

    # -- forward ---------------------------------------------------------------------------
    def region_features(self, x: Tensor) -> Tensor:
        """RoI features (N, C, h, w) -> features after the shared FCs (N, fc_out_channels)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        return x

    def region_embeddings(self, x: Tensor) -> Tensor:
        """RoI features (N, C, h, w) -> L2-normalised region embeddings (N, D)."""
        return F.normalize(self.projection(self.region_features(x)), dim=-1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """RoI features (N, C, h, w) -> (cls_score (N, C+1), bbox_pred (N, 4))."""
        shared = self.region_features(x)
        embeddings = F.normalize(self.projection(shared), dim=-1)
        background = F.normalize(self.background_embedding, dim=0)[None]
        classifier = torch.cat([self.class_embeddings, background], dim=0)
        cls_score = embeddings @ classifier.t() / self.temperature
        return cls_score, self.box_regression(shared)

    def box_regression(self, shared: Tensor) -> Tensor:
        """Shared features (N, fc_out_channels) -> class-agnostic box deltas (N, 4)."""
        x_reg = shared
        for conv in self.reg_convs:
            x_reg = conv(x_reg)
        if x_reg.dim() > 2:
            if self.with_avg_pool:
                x_reg = self.avg_pool(x_reg)
            x_reg = x_reg.flatten(1)
        for fc in self.reg_fcs:
            x_reg = self.relu(fc(x_reg))
        return self.fc_reg(x_reg)
