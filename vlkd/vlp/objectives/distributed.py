"""torch.distributed helpers of the losses whose negatives span every process's batch.

Without an initialised process group every helper is the identity, so the losses run
unchanged in a single process. ``all_gather`` needs the same shape on every process.
"""
from typing import Tuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor


def world() -> Tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Every process's ``tensor`` (N, ...) concatenated in rank order, (world_size * N, ...).

    The gradient flows back to each process's own rows: the backward of the gather sums the
    gradients that every process's loss sends to those rows.
    """
    if world()[1] == 1:
        return tensor
    return torch.cat(dist_nn.all_gather(tensor), dim=0)


@torch.no_grad()
def gather_no_grad(tensor: Tensor) -> Tensor:
    """Every process's ``tensor`` (N, ...) concatenated in rank order, without gradient
    (labels, ids, momentum features, queue entries)."""
    world_size = world()[1]
    if world_size == 1:
        return tensor.detach()
    parts = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(parts, tensor.detach().contiguous())
    return torch.cat(parts, dim=0)
