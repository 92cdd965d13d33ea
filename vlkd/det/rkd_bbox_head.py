"""Box head of region-based KD: a distillation branch and a classification branch whose
projection is produced from the distillation branch's weights (weight transfer).

Rasheed et al. (2022) train two embeddings of each region from the shared RoI features
``f`` (N, F):

- distillation branch: ``d = normalize(W_D f)`` with ``W_D`` (D, F) = :attr:`projection`,
  trained only by the region distillation losses (L1 and IRM against the teacher's crop
  embeddings); :meth:`region_embeddings` returns it, as in ViLD;
- classification branch: its projection is not learned freely but computed from ``W_D`` by
  a small learned transfer function, plus a residual MLP on the features:

      W_T = fc2(LeakyReLU(fc1(W_D)))          fc1: F -> D, fc2: D -> F, so W_T is (D, F)
      e   = normalize(W_T f + mlp(f))         mlp: F -> F -> D with a LeakyReLU between

  and classified like ViLD, ``[e·t_1, ..., e·t_C, e·t_bg] / T`` (text embeddings ``t_c``
  of the active vocabulary, learned background). ``W_D`` enters the transfer function
  without gradient: the classification losses train the transfer function, the residual
  MLP and everything below the head, and the distillation branch keeps what distillation
  taught it (the authors' weight-transfer classifier freezes the distilled layer too).

The classifier is used for the supervised loss on base boxes, for the pseudo-label loss
(with the image-label vocabulary, :meth:`classify`) and at test time.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS
from .vild_bbox_head import ViLDBBoxHead
from .vocabulary import check_class_names


@MODELS.register_module()
class RKDBBoxHead(ViLDBBoxHead):
    """:class:`ViLDBBoxHead` with a weight-transfer classification branch.

    Args:
        image_label_classes: the vocabulary of the pseudo-label loss (the classes image-level
            labels can name, novel ones included); embedded once with the head's teacher.
        transfer_slope: negative slope of the LeakyReLUs (the paper: 0.1).
        **kwargs: as for :class:`ViLDBBoxHead`.
    """

    def __init__(self, *args, image_label_classes: Sequence[str],
                 transfer_slope: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.image_label_classes = check_class_names(image_label_classes,
                                                     'image_label_classes')
        image_label_embeddings = self.vocabulary.embed(self.image_label_classes)
        self.vocabulary.release()
        self.register_buffer('image_label_embeddings', image_label_embeddings,
                             persistent=False)
        features = self.cls_last_dim
        self.weight_transfer = nn.Sequential(
            nn.Linear(features, self.embed_dim), nn.LeakyReLU(transfer_slope),
            nn.Linear(self.embed_dim, features))
        self.residual = nn.Sequential(
            nn.Linear(features, features), nn.LeakyReLU(transfer_slope),
            nn.Linear(features, self.embed_dim))

    def transferred_weight(self) -> Tensor:
        """(D, F) projection of the classification branch, ``fc2(act(fc1(W_D)))``."""
        return self.weight_transfer(self.projection.weight.detach())

    def classification_embeddings(self, shared: Tensor) -> Tensor:
        """Shared features (N, F) -> L2-normalised classification embeddings (N, D)."""
        return F.normalize(F.linear(shared, self.transferred_weight()) + self.residual(shared),
                           dim=-1)

    def classify(self, shared: Tensor, class_embeddings: Tensor) -> Tensor:
        """Shared features (N, F), text embeddings (C, D) -> logits (N, C+1), background
        last, cosine similarities divided by the temperature."""
        background = F.normalize(self.background_embedding, dim=0)[None]
        classifier = torch.cat([class_embeddings, background], dim=0)
        return self.classification_embeddings(shared) @ classifier.t() / self.temperature

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """RoI features (N, C, h, w) -> (cls_score (N, C+1), bbox_pred (N, 4))."""
        shared = self.region_features(x)
        return self.classify(shared, self.class_embeddings), self.box_regression(shared)
