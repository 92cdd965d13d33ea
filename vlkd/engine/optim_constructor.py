"""An optimizer constructor that keeps one parameter group per set of hyperparameters.

mmengine's ``DefaultOptimWrapperConstructor`` applies ``paramwise_cfg`` by giving every
parameter its own group (120 groups for the tiny CLIP recipe). torch's ``foreach`` / fused
optimizers batch their arithmetic within a group only, so an AdamW step then launches its
kernels once per parameter: about 1400 launches instead of about 40, which on a GPU is
host time of the same order as the forward and backward pass of a small model
(``tools/benchmark.py``, CLIP recipe row). This constructor builds the optimizer exactly as
the default one, then merges the groups whose hyperparameters are all equal. A parameter's
update does not depend on which group holds it, so training is unchanged; parameter
schedulers scale every group alike.

Use: ``optim_wrapper = dict(constructor='GroupedOptimWrapperConstructor', ...)``.
"""
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


def merge_param_groups(param_groups: list) -> list:
    """Groups with equal hyperparameters (every key but ``params``) merged, in the order of
    their first appearance; each group's parameters keep their order."""
    merged = {}
    for group in param_groups:
        settings = {key: value for key, value in group.items() if key != 'params'}
        key = repr(sorted(settings.items()))
        if key not in merged:
            merged[key] = dict(settings, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupedOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` (same arguments, same ``paramwise_cfg``) whose
    optimizer has one parameter group per distinct set of hyperparameters."""

    def __call__(self, model: nn.Module):
        optim_wrapper = super().__call__(model)
        optimizer = optim_wrapper.optimizer
        if not optimizer.state:  # freshly built: nothing refers to the groups yet
            groups = merge_param_groups(optimizer.param_groups)
            optimizer.param_groups = []
            for group in groups:
                optimizer.add_param_group(group)
        return optim_wrapper
