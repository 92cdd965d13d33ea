"""Word-region alignment (UNITER's WRA): optimal transport between words and regions.

For one image-text pair with ``m`` words ``w_i`` and ``n`` regions ``r_j``, the cost is the
cosine distance ``C_ij = 1 - cos(w_i, r_j)``, the marginals are uniform (``1/m`` per word,
``1/n`` per region), and the loss is the transport distance

    D = min_{T >= 0, T 1 = 1/m, T^T 1 = 1/n} sum_ij C_ij T_ij,

small when words and regions can be matched cheaply. Matched pairs minimise ``D``, mismatched
pairs (ITM negatives) maximise it: the loss is the mean of ``+D`` over matched pairs and
``-D`` over the others.

The plan is found with IPOT (inexact proximal point, Xie et al. 2020): each outer iteration
solves ``min <C, T> + beta KL(T || T_prev)`` approximately by ``inner_iterations`` Sinkhorn
scalings of the kernel ``exp(-C / beta) * T_prev``. Unlike entropic Sinkhorn its iterates
converge to the exact OT plan. The whole batch is solved at once: padded words / regions
get zero mass and zero kernel. The plan is computed without gradient; the gradient of ``D``
reaches the features through ``C`` (by the envelope theorem, the exact plan's gradient).
On CUDA the solve is one Triton kernel (:mod:`.ipot_kernel`) when ``triton`` is installed.
"""
import functools
import importlib.util
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlkd.registry import MODELS


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """Whether ``triton`` can be imported (it ships with the Linux CUDA builds of torch)."""
    return importlib.util.find_spec('triton') is not None


def ipot_solver(cost: Tensor, backend: str = 'auto') -> str:
    """``'torch'`` or ``'triton'``: the solver :func:`ipot` runs for ``cost`` (B, m, n) under
    ``backend`` (see there)."""
    if backend not in ('auto', 'torch', 'triton'):
        raise ValueError(f"backend must be 'auto', 'torch' or 'triton', got {backend!r}")
    if backend != 'auto':
        return backend
    if cost.is_cuda and triton_available():
        from . import ipot_kernel  # needs triton
        if ipot_kernel.fits(*cost.shape[1:]):
            return 'triton'
    return 'torch'


@torch.no_grad()
def ipot(cost: Tensor, row_mask: Tensor, col_mask: Tensor, beta: float = 0.5,
         num_iterations: int = 50, inner_iterations: int = 1, backend: str = 'auto') -> Tensor:
    """Approximate optimal transport plans of a batch of problems with uniform marginals.

    Args:
        cost: (B, m, n) transport costs.
        row_mask: (B, m) bool, True on real rows (words); padded rows get no mass.
        col_mask: (B, n) bool, True on real columns (regions).
        beta: proximal step (the KL weight); smaller is closer to one exact OT step, larger
            is smoother.
        num_iterations: proximal (outer) iterations.
        inner_iterations: Sinkhorn scalings per proximal step (IPOT: 1).
        backend: ``'torch'``: the loop below; ``'triton'``: one kernel launch for the whole
            solve (:mod:`.ipot_kernel`, float32); ``'auto'``: Triton for CUDA tensors when
            triton is installed and the padded problem fits in registers (up to 64 x 256),
            else the loop.

    Returns:
        (B, m, n) plans, without gradient: column sums are exactly ``1/n_b`` on real columns,
        row sums approach ``1/m_b``; zero on padded rows and columns.

    At the sizes of word-region alignment (tens of rows and columns) each tensor operation
    costs about as much in dispatch as in arithmetic, so an iteration is a few elementwise
    operations and sums on preallocated buffers, the plan updated in place. Row and column
    sums are elementwise products summed (not batched matrix-vector products: BLAS threads
    tiny batched products, and its threads then wait on each other, several times slower
    on a busy CPU). Padded rows / columns get 1 added to their (zero) sums, so that their
    scale is ``0 / 1`` instead of ``0 / 0``.
    """
    if cost.dim() != 3 or row_mask.shape != cost.shape[:2] or col_mask.shape != (
            cost.shape[0], cost.shape[2]):
        raise ValueError(f'cost must be (B, m, n) with row_mask (B, m) and col_mask (B, n); got '
                         f'{tuple(cost.shape)}, {tuple(row_mask.shape)}, {tuple(col_mask.shape)}')
    solver = ipot_solver(cost, backend)
    rows, cols = row_mask.bool(), col_mask.bool()
    empty = ~(rows.any(dim=1) & cols.any(dim=1))
    if empty.any():  # the one host-device synchronisation
        raise ValueError(f'sample {empty.nonzero()[0].item()} has no real word or no real '
                         'region to transport')
    if solver == 'triton':
        from . import ipot_kernel  # needs triton
        return ipot_kernel.ipot_triton(cost, rows, cols, beta, num_iterations,
                                       inner_iterations).to(cost.dtype)
    num_rows = rows.sum(dim=1, keepdim=True)
    num_cols = cols.sum(dim=1, keepdim=True)
    pair_mask = rows[:, :, None] & cols[:, None, :]
    # marginals (1/m on real rows, 0 on padding) and padding indicators, broadcastable
    # against the (B, m, n) plan
    row_mass = (rows.to(cost.dtype) / num_rows)[:, :, None]
    col_mass = (cols.to(cost.dtype) / num_cols)[:, None, :]
    row_padding = (~rows).to(cost.dtype)[:, :, None]
    col_padding = (~cols).to(cost.dtype)[:, None, :]
    kernel = torch.exp(-cost / beta) * pair_mask
    plan = pair_mask.to(cost.dtype)
    scaled = torch.empty_like(plan)
    col_scale = col_mass.clone()
    row_scale, row_sum = torch.empty_like(row_mass), torch.empty_like(row_mass)
    col_sum = torch.empty_like(col_mass)
    for _ in range(num_iterations):
        plan.mul_(kernel)  # the proximal kernel exp(-C / beta) * T_prev
        for _ in range(inner_iterations):
            torch.sum(torch.mul(plan, col_scale, out=scaled), dim=2, keepdim=True, out=row_sum)
            torch.div(row_mass, row_sum.add_(row_padding), out=row_scale)
            torch.sum(torch.mul(plan, row_scale, out=scaled), dim=1, keepdim=True, out=col_sum)
            torch.div(col_mass, col_sum.add_(col_padding), out=col_scale)
        torch.mul(scaled, col_scale, out=plan)  # diag(row_scale) q diag(col_scale)
    return plan


def cosine_cost(x: Tensor, y: Tensor) -> Tensor:
    """(B, m, n) cosine distances ``1 - cos(x_i, y_j)`` of x (B, m, D) and y (B, n, D)."""
    return 1 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(1, 2)


@MODELS.register_module()
class WordRegionAlignmentLoss(nn.Module):
    """Signed optimal transport distance between word and region features.

    Args:
        beta, num_iterations, inner_iterations: IPOT settings (UNITER: 0.5, 50, 1).
        loss_weight: factor applied to the loss.
    """

    def __init__(self, beta: float = 0.5, num_iterations: int = 50, inner_iterations: int = 1,
                 loss_weight: float = 1.0):
        super().__init__()
        if beta <= 0 or num_iterations < 1 or inner_iterations < 1:
            raise ValueError('need beta > 0 and at least one (inner) iteration, got '
                             f'beta={beta}, {num_iterations}, {inner_iterations}')
        self.beta = beta
        self.num_iterations = num_iterations
        self.inner_iterations = inner_iterations
        self.loss_weight = loss_weight

    def distance(self, word_features: Tensor, region_features: Tensor, word_mask: Tensor,
                 region_mask: Tensor) -> Tensor:
        """(B,) transport distances of ``word_features`` (B, m, D), ``region_features``
        (B, n, D) with masks (B, m), (B, n) (1 / True on real tokens)."""
        if (word_features.dim() != 3 or region_features.dim() != 3
                or word_features.shape[0] != region_features.shape[0]
                or word_features.shape[2] != region_features.shape[2]):
            raise ValueError('word and region features must be (B, m, D) and (B, n, D), got '
                             f'{tuple(word_features.shape)} and {tuple(region_features.shape)}')
        if word_mask.shape != word_features.shape[:2]:
            raise ValueError(f'word_mask must be (B, m) = {tuple(word_features.shape[:2])}, got '
                             f'{tuple(word_mask.shape)}')
        if region_mask.shape != region_features.shape[:2]:
            raise ValueError(f'region_mask must be (B, n) = {tuple(region_features.shape[:2])}, '
                             f'got {tuple(region_mask.shape)}')
        cost = cosine_cost(word_features, region_features)
        with torch.no_grad():
            # at least float32 for the scalings, whatever the features' precision
            solve_dtype = torch.promote_types(cost.dtype, torch.float32)
            plan = ipot(cost.detach().to(solve_dtype), word_mask, region_mask, self.beta,
                        self.num_iterations, self.inner_iterations).to(cost.dtype)
        return (cost * plan).sum(dim=(1, 2))

    def forward(self, word_features: Tensor, region_features: Tensor, word_mask: Tensor,
                region_mask: Tensor, is_match: Optional[Tensor] = None) -> Tensor:
        """Mean over pairs of ``+D`` (matched) or ``-D`` (``is_match`` (B,) 0: mismatched);
        all pairs are matched by default. Arguments as :meth:`distance`."""
        distance = self.distance(word_features, region_features, word_mask, region_mask)
        if is_match is not None:
            if is_match.shape != distance.shape:
                raise ValueError(f'is_match must be ({len(distance)},), one 0/1 per pair, '
                                 f'got {tuple(is_match.shape)}')
            distance = torch.where(is_match.bool(), distance, -distance)
        return self.loss_weight * distance.mean()
