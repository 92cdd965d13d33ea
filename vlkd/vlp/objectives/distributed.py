"""torch.distributed helpers of the losses whose negatives span every process's batch.

Without an initialised process group every helper is the identity, so the losses run
unchanged in a single process. ``all_gather`` needs the same shape on every process;
:func:`gather_padded` first pads one dimension to the longest of all processes (token
sequences, region lists).
"""
from typing import List, Sequence, Tuple

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


def gather_padded(tensor: Tensor, dim: int = 1, value=0) -> Tensor:
    """Every process's ``tensor`` (N, ..., L_rank, ...), padded with ``value`` along ``dim``
    to the longest L of all processes and concatenated in rank order. Floating tensors keep
    their gradient (as :func:`gather_with_grad`); others are gathered without."""
    if world()[1] == 1:
        return tensor
    length = torch.tensor([tensor.shape[dim]], device=tensor.device)
    longest = int(gather_no_grad(length).max())
    if tensor.shape[dim] < longest:
        shape = list(tensor.shape)
        shape[dim] = longest - tensor.shape[dim]
        tensor = torch.cat([tensor, tensor.new_full(shape, value)], dim=dim)
    if tensor.is_floating_point():
        return gather_with_grad(tensor)
    return gather_no_grad(tensor)


def gather_objects(items: Sequence) -> List:
    """Every process's list of picklable ``items`` (e.g. captions), concatenated in rank
    order."""
    world_size = world()[1]
    if world_size == 1:
        return list(items)
    parts = [None] * world_size
    dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]
