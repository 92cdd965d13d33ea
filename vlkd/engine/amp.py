"""Mixed precision on the CPU, where mmengine's AmpOptimWrapper refuses to run.

``AmpOptimWrapper`` asserts a GPU (or NPU/MLU/MUSA) and scales the loss for float16. CPU
autocast computes in bfloat16, which has float32's exponent range, so no loss scaling is
needed: the wrapper below only runs the forward pass under ``torch.autocast('cpu')``.
Parameters, gradients and optimizer state stay float32.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


# Registered in mmengine's root registry: vlkd has no optim-wrapper registry of its own, and
# the root is visible from every scope (vlkd, mmdet, mmseg).
@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """OptimWrapper whose forward pass runs under CPU autocast in ``dtype`` (bfloat16)."""

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        if dtype != 'bfloat16':
            raise ValueError(f"CPU mixed precision computes in 'bfloat16', got dtype={dtype!r} "
                             '(float16 on the CPU needs loss scaling and is slower).')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
