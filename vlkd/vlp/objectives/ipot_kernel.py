"""IPOT as one Triton kernel: each program solves one problem of the batch in registers.

:func:`vlkd.vlp.objectives.wra.ipot` runs 50 proximal iterations of about ten tensor
operations each. At word-region sizes (tens of rows and columns) every operation is a kernel
launch that does almost no work, so on a GPU the solve costs ~500 launches. Here the whole
solve of one (m, n) problem (the cost matrix, the kernel ``exp(-C / beta)``, the plan and
the scalings) stays in one program's registers from the first iteration to the last: one
launch for the batch. The arithmetic is the same as the PyTorch loop's, operation for
operation, in float32.

Imported only when a CUDA problem is solved (or, in tests, under ``TRITON_INTERPRET=1`` on
the CPU); importing it needs ``triton``.
"""
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

# Largest padded problem (rows x columns, powers of two) solved in registers; larger ones
# spill and the PyTorch loop is used instead.
MAX_BLOCK_ELEMENTS = 64 * 256
# Warps per program. Each iteration is a chain of dependent row and column reductions, so
# the kernel is latency-bound and more threads per block shorten every step. Measured on an
# H200 (kernel time of batch 32, 50 iterations; 1 / 2 / 4 / 8 warps): 32 x 64 block 172 /
# 70 / 49 / 44 us, 64 x 128 block 522 / 401 / 400 / 89 us.
NUM_WARPS = 8


@triton.jit
def _ipot_program(cost_ptr, row_mask_ptr, col_mask_ptr, plan_ptr, m, n, inv_beta,
                  num_iterations, inner_iterations,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    in_rows = rows < m
    in_cols = cols < n
    in_block = in_rows[:, None] & in_cols[None, :]
    offsets = b * m * n + rows[:, None] * n + cols[None, :]
    # 1.0 on real rows / columns, 0.0 on padding (the caller's and the block's)
    row_real = tl.load(row_mask_ptr + b * m + rows, mask=in_rows, other=0).to(tl.float32)
    col_real = tl.load(col_mask_ptr + b * n + cols, mask=in_cols, other=0).to(tl.float32)
    cost = tl.load(cost_ptr + offsets, mask=in_block, other=0.0)
    pair = row_real[:, None] * col_real[None, :]
    kernel = tl.exp(-cost * inv_beta) * pair
    row_mass = row_real / tl.sum(row_real, axis=0)
    col_mass = col_real / tl.sum(col_real, axis=0)
    row_padding = 1.0 - row_real
    col_padding = 1.0 - col_real
    plan = pair
    col_scale = col_mass
    row_scale = row_mass
    for _ in range(num_iterations):
        q = plan * kernel
        for _ in range(inner_iterations):
            row_scale = row_mass / (tl.sum(q * col_scale[None, :], axis=1) + row_padding)
            col_scale = col_mass / (tl.sum(q * row_scale[:, None], axis=0) + col_padding)
        plan = q * row_scale[:, None] * col_scale[None, :]
    tl.store(plan_ptr + offsets, plan, mask=in_block)


def block_shape(m: int, n: int) -> tuple:
    """Padded (rows, columns) of one program's block for an (m, n) problem."""
    return triton.next_power_of_2(max(m, 2)), triton.next_power_of_2(max(n, 2))


def fits(m: int, n: int) -> bool:
    """Whether an (m, n) problem is solved by the kernel (else: the PyTorch loop)."""
    rows, cols = block_shape(m, n)
    return rows * cols <= MAX_BLOCK_ELEMENTS


def ipot_triton(cost: Tensor, row_mask: Tensor, col_mask: Tensor, beta: float,
                num_iterations: int, inner_iterations: int,
                num_warps: Optional[int] = None) -> Tensor:
    """(B, m, n) float32 plans; arguments and result as :func:`vlkd.vlp.objectives.wra.ipot`
    (its checks already done; masks bool). ``num_warps``: default :data:`NUM_WARPS`."""
    batch, m, n = cost.shape
    cost = cost.to(torch.float32).contiguous()
    plan = torch.empty_like(cost)
    rows, cols = block_shape(m, n)
    _ipot_program[(batch,)](
        cost, row_mask.contiguous(), col_mask.contiguous(), plan, m, n, 1.0 / beta,
        num_iterations, inner_iterations, BLOCK_M=rows, BLOCK_N=cols,
        num_warps=num_warps or NUM_WARPS)
    return plan
