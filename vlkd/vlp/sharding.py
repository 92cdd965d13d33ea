"""FSDP for vlkd models: the strategy, the wrapper and the auto-wrap policy of
``configs/_base_/strategies/fsdp.py``.

:class:`VLKDFSDPStrategy` is mmengine's ``FSDPStrategy`` whose ``--resume`` works with
torch >= 2.1 (mmengine 0.10.7 passes the optimizer state to
``FullyShardedDataParallel.optim_state_dict_to_load`` in the argument order of older torch)
and whose checkpoints keep every optimizer state on CPUs.

:class:`VLKDFullyShardedDataParallel` is mmengine's ``MMFullyShardedDataParallel`` for models
with scalar parameters (CLIP's logit scale, learned temperatures), which torch's FSDP refuses.
:func:`transformer_block_wrap_policy` makes every transformer block its own fully sharded
unit: a block's parameters are gathered only while it runs (forward, and backward), so the
peak parameter memory is one block's plus the unwrapped rest (embeddings, projections,
heads) instead of the whole model. Only modules called through their ``forward`` may be
units: the towers' blocks are, whereas the towers themselves are entered through methods
such as ``encode_image`` and stay in the root unit.
"""
from mmengine._strategy import FSDPStrategy
from mmengine.device import get_device
from mmengine.model import MMFullyShardedDataParallel
from mmengine.registry import MODEL_WRAPPERS, STRATEGIES
from open_clip.transformer import CustomResidualAttentionBlock, ResidualAttentionBlock
from timm.models.vision_transformer import Block as TimmBlock
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
from transformers.models.bert.modeling_bert import BertLayer

from vlkd.registry import FUNCTIONS
from .fusion.co_attention import CoAttentionLayer
from .fusion.layers import TransformerBlock
from .fusion.mome import MoMEBlock
from .momentum import MomentumModel

# open_clip towers, timm ViTs, transformers BERT, vlkd's fusion and MoME transformers
TRANSFORMER_BLOCKS = (ResidualAttentionBlock, CustomResidualAttentionBlock, TimmBlock,
                      BertLayer, TransformerBlock, CoAttentionLayer, MoMEBlock)


@FUNCTIONS.register_module()
def transformer_block_wrap_policy(module: nn.Module, recurse: bool,
                                  nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy: descend everywhere, wrap the :data:`TRANSFORMER_BLOCKS`."""
    return transformer_auto_wrap_policy(module, recurse, nonwrapped_numel,
                                        transformer_layer_cls=set(TRANSFORMER_BLOCKS))


def _hold_scalars_as_vectors(module: nn.Module) -> None:
    """Replace the 0-d parameters of ``module`` (not of its children) by 1-element ones; its
    state dicts keep the 0-d shape, so checkpoints stay those of the unwrapped model."""
    names = [name for name, param in module.named_parameters(recurse=False) if param.dim() == 0]
    if not names:
        return
    for name in names:
        scalar = module._parameters[name]
        module._parameters[name] = nn.Parameter(scalar.detach().reshape(1),
                                                requires_grad=scalar.requires_grad)

    def to_scalars(module, state_dict, prefix, local_metadata):
        for name in names:  # (FSDP's full state dicts leave other ranks empty tensors)
            if prefix + name in state_dict and state_dict[prefix + name].numel() == 1:
                state_dict[prefix + name] = state_dict[prefix + name].reshape(())

    def to_vectors(module, state_dict, prefix, *args):
        for name in names:
            if prefix + name in state_dict:
                state_dict[prefix + name] = state_dict[prefix + name].reshape(1)

    module.register_state_dict_post_hook(to_scalars)
    module.register_load_state_dict_pre_hook(to_vectors)


# Registered in mmengine's root registry, where the strategies look wrappers up.
@MODEL_WRAPPERS.register_module()
class VLKDFullyShardedDataParallel(MMFullyShardedDataParallel):
    """``MMFullyShardedDataParallel`` that also takes models with scalar parameters.

    torch's FSDP shards flattened parameters and refuses 0-d ones; they are held as
    1-element parameters instead (they broadcast as scalars do in the losses), and state
    dicts give and take them 0-d. Models with a :class:`~vlkd.vlp.momentum.MomentumModel`
    are refused: its in-place EMA update of FSDP's parameter views breaks autograd.
    """

    def __init__(self, module: nn.Module, **kwargs):
        if any(isinstance(submodule, MomentumModel) for submodule in module.modules()):
            raise ValueError(
                f'{type(module).__name__} has a momentum (EMA) model, which FSDP cannot '
                'train: its in-place update of the sharded parameters breaks autograd. '
                'Train momentum recipes (ALBEF-style) with DDP (no strategy).')
        for submodule in module.modules():
            _hold_scalars_as_vectors(submodule)
        super().__init__(module, **kwargs)


# Registered in mmengine's root registry, where the FlexibleRunner looks strategies up.
@STRATEGIES.register_module()
class VLKDFSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy``, resuming the optimizer state with the current torch API.

    On CPUs whole state dicts are gathered without ``offload_to_cpu``: with it, torch's FSDP
    returns optimizer states that share memory (Adam's ``exp_avg`` came back equal to its
    ``exp_avg_sq``), and a resumed run would take wrong moments.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if get_device() == 'cpu':
            for config in (self.state_dict_config, self.optim_state_dict_config):
                if hasattr(config, 'offload_to_cpu'):
                    config.offload_to_cpu = False

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load an optimizer state dict saved by this strategy into the sharded optimizer."""
        self.optim_wrapper.load_state_dict(FullyShardedDataParallel.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict))
