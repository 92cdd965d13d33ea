"""Image contrastive loss (SimCLR, MoCo): InfoNCE with augmentation-made positives.

Two augmented views of each of ``N`` images give queries ``q_i`` and keys ``k_i``
(L2-normalised here). Query ``i`` has exactly one positive key, ``k_i``; its negatives are

- the other keys of the batch (``batch_negatives=True``; SimCLR, MoCo v3),
- the other queries of the batch (``query_negatives=True``; with ``symmetric=True`` this is
  SimCLR's NT-Xent over all ``2N`` views),
- the rows of a queue of past keys, if one is given (MoCo v1/v2; see
  :class:`vlkd.vlp.momentum.FeatureQueue`).

    L_i = -log( exp(q_i.k_i / tau) / sum_{c in candidates(i)} exp(q_i.c / tau) )

and the loss is the mean over queries (``symmetric=True``: averaged with the same loss with
keys as queries). Under ``torch.distributed`` the batch negatives come from every process
(gathered with gradient, as in :mod:`.itc`); each process scores its own queries.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS

from .distributed import gather_with_grad, world


@MODELS.register_module()
class ImageContrastiveLoss(nn.Module):
    """InfoNCE between two views of the same images, one positive key per query.

    Args:
        temperature: tau, the softmax temperature (SimCLR 0.1-0.5, MoCo 0.07-0.2).
        batch_negatives: the keys of the other images of the batch are negatives.
        query_negatives: the queries of the other images are negatives too (NT-Xent).
        symmetric: average with the loss that swaps the roles of queries and keys.
        loss_weight: factor applied to the loss.
    """

    def __init__(self, temperature: float = 0.1, batch_negatives: bool = True,
                 query_negatives: bool = False, symmetric: bool = False,
                 loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got {temperature}')
        self.temperature = temperature
        self.batch_negatives = batch_negatives
        self.query_negatives = query_negatives
        self.symmetric = symmetric
        self.loss_weight = loss_weight

    def forward(self, queries: Tensor, keys: Tensor, queue: Optional[Tensor] = None) -> Tensor:
        """Loss (scalar) of ``queries`` (N, D) and ``keys`` (N, D), row ``i`` of both being
        views of image ``i``; ``queue`` (K, D): extra negative keys (no gradient)."""
        if queries.dim() != 2 or queries.shape != keys.shape:
            raise ValueError('queries and keys must both be (N, D), row i of both views of '
                             f'image i; got {tuple(queries.shape)} and {tuple(keys.shape)}')
        if queue is not None and (queue.dim() != 2 or queue.shape[1] != queries.shape[1]):
            raise ValueError(f'queue must be (K, {queries.shape[1]}) like the keys, got '
                             f'{tuple(queue.shape)}')
        if not (self.batch_negatives or self.query_negatives or queue is not None):
            raise ValueError('ImageContrastiveLoss has no negatives: set batch_negatives or '
                             'query_negatives, or pass a queue of keys')
        queries = F.normalize(queries, dim=-1)
        keys = F.normalize(keys, dim=-1)
        if queue is not None:
            queue = F.normalize(queue.detach(), dim=-1)
        loss = self._info_nce(queries, keys, queue)
        if self.symmetric:
            loss = (loss + self._info_nce(keys, queries, queue)) / 2
        return self.loss_weight * loss

    def _info_nce(self, queries: Tensor, keys: Tensor, queue: Optional[Tensor]) -> Tensor:
        """Mean InfoNCE of the local normalised queries over their candidate columns:
        [positive or all (gathered) keys | (gathered) queries, self excluded | queue]."""
        n = len(queries)
        rows = torch.arange(n, device=queries.device)
        own = world()[0] * n + rows  # column of row i's own image in a gathered block
        blocks = []
        if self.batch_negatives:
            blocks.append(queries @ gather_with_grad(keys).T)
            labels = own
        else:
            blocks.append((queries * keys).sum(-1, keepdim=True))
            labels = torch.zeros_like(rows)
        if self.query_negatives:
            query_logits = queries @ gather_with_grad(queries).T
            blocks.append(query_logits.index_put((rows, own), query_logits.new_tensor(-torch.inf)))
        if queue is not None:
            blocks.append(queries @ queue.T)
        logits = torch.cat(blocks, dim=1) / self.temperature
        return F.cross_entropy(logits, labels)
