"""VLMo's stage-wise pretraining: which MoME parameters train in each stage, and a hook that
switches stages at configured iterations.

=============== ======================================================================
stage           trained parameters (the rest of the MoMETransformer is frozen)
=============== ======================================================================
``image``       shared attention, V-FFN experts, image embeddings, final LayerNorm
``text``        L-FFN experts and text embeddings (attention and V-FFN frozen)
``image_text``  everything
=============== ======================================================================

Only the MoMETransformer(s) inside the model are touched; heads outside them keep their
settings. A model with a ``set_pretraining_stage(stage)`` method (:class:`vlkd.vlp.VLPModel`)
is also told the stage, so that it runs the objectives of that stage. Under DDP, build the
wrapper while every parameter still requires gradients (the hook applies stages after
wrapping) with ``find_unused_parameters=True``, because frozen
parameters and unused experts get no gradient.
"""
import logging
from typing import List, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from vlkd.registry import HOOKS
from .mome import PARAMETER_GROUPS, MoMETransformer

VLMO_STAGES = {
    'image': ('attention', 'vision_expert', 'image_embedding', 'final_norm'),
    'text': ('language_expert', 'text_embedding'),
    'image_text': PARAMETER_GROUPS,
}


def _mome_modules(model: nn.Module) -> List[MoMETransformer]:
    modules = [m for m in model.modules() if isinstance(m, MoMETransformer)]
    if not modules:
        raise ValueError(f'{type(model).__name__} contains no MoMETransformer: VLMo stages '
                         'apply to MoME models only.')
    return modules


def apply_vlmo_stage(model: nn.Module, stage: str) -> None:
    """Set ``requires_grad`` of every MoMETransformer in ``model`` for ``stage``; frozen
    parameters also lose any stale gradient, so optimizers skip them."""
    if stage not in VLMO_STAGES:
        raise ValueError(f'Unknown VLMo stage {stage!r}; stages are {list(VLMO_STAGES)}.')
    trained = VLMO_STAGES[stage]
    for mome in _mome_modules(model):
        for name, param in mome.named_parameters():
            train = mome.parameter_group(name) in trained
            param.requires_grad_(train)
            if not train:
                param.grad = None


@HOOKS.register_module()
class VLMoStageHook(Hook):
    """Switch VLMo pretraining stages during one training run.

    Args:
        stages: ``[(iteration, stage), ...]`` sorted by iteration, the first at 0, e.g.
            ``[(0, 'image'), (2000, 'text'), (4000, 'image_text')]``: each stage holds from
            its iteration until the next one's.
    """

    priority = 'NORMAL'

    def __init__(self, stages: Sequence[Tuple[int, str]]):
        stages = [(int(it), str(name)) for it, name in stages]
        if not stages or stages[0][0] != 0:
            raise ValueError(f'stages must start at iteration 0, got {stages}.')
        if any(a[0] >= b[0] for a, b in zip(stages, stages[1:])):
            raise ValueError(f'stage iterations must increase, got {stages}.')
        for _, name in stages:
            if name not in VLMO_STAGES:
                raise ValueError(f'Unknown VLMo stage {name!r}; stages are '
                                 f'{list(VLMO_STAGES)}.')
        self.stages = stages
        self.current = None

    def stage_at(self, iteration: int) -> str:
        """The stage that holds at ``iteration``."""
        return [name for start, name in self.stages if start <= iteration][-1]

    def _apply(self, runner) -> None:
        stage = self.stage_at(runner.iter)
        if stage != self.current:
            apply_vlmo_stage(runner.model, stage)
            # a model whose objectives depend on the stage (VLPModel) is told which one holds
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            if hasattr(model, 'set_pretraining_stage'):
                model.set_pretraining_stage(stage)
            self.current = stage
            print_log(f'VLMo stage {stage!r} from iteration {runner.iter}', logger='current',
                      level=logging.INFO)

    def before_train(self, runner) -> None:
        self._apply(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply(runner)
