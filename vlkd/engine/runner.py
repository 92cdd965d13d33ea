"""From a config file and command-line choices to a checked mmengine Runner.

The tools (``tools/train.py``, ``tools/test.py``) are thin: they parse arguments and call
these functions, which any script can call the same way.
"""
import datetime
import importlib.util
import logging
import os.path as osp
from pathlib import Path
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS, RUNNERS, init_default_scope
from mmengine.runner import Runner, find_latest_checkpoint
from torch.nn.parallel import DistributedDataParallel

from vlkd.registry import HOOKS
from .build_errors import accepted_arguments, check_optimizer_type, explain_build_errors
from .config_check import ConfigError, check_cfg_options, check_config


def load_config(path, cfg_options: Optional[Dict[str, object]] = None) -> Config:
    """Read a config file and merge ``--cfg-options`` into it (after checking their keys)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f'config file {path} does not exist.')
    cfg = Config.fromfile(str(path))
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Check ``cfg`` and build its Runner; build errors name the config entry at fault.

    A config without ``default_scope`` gets 'vlkd'. Parts that the Runner builds later
    (dataloaders, evaluators) can fail in ``train()`` or ``test()``; run those inside
    ``explain_build_errors(cfg)`` for the same messages.
    """
    check_config(cfg)
    check_strategy_packages(cfg)
    prepare_cpu_distributed(cfg)
    if 'default_scope' not in cfg:
        cfg.default_scope = 'vlkd'
    init_default_scope(cfg.default_scope)
    check_optimizer_type(cfg)
    with explain_build_errors(cfg):
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)


def check_strategy_packages(cfg: Config) -> None:
    """A FlexibleRunner strategy whose package is missing: say how to install it."""
    strategy = str((cfg.get('strategy') or {}).get('type', '')).split('.')[-1]
    if strategy == 'DeepSpeedStrategy' and importlib.util.find_spec('deepspeed') is None:
        raise ConfigError("strategy.type='DeepSpeedStrategy' needs DeepSpeed, which is not "
                          'installed (vlkd does not require it): pip install deepspeed. '
                          'Or shard with FSDP, which needs no extra package: '
                          'configs/_base_/strategies/fsdp.py.')


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let a distributed launch train on CPUs: a gloo process group and DDP without devices.

    mmengine's launchers pin each process to a GPU (``torch.cuda.set_device``) and hand DDP
    ``device_ids=[LOCAL_RANK]``; both fail without CUDA. For ``--launcher pytorch`` (torchrun,
    tools/dist_train.sh) on a machine without GPUs this joins the gloo group that torchrun's
    environment describes and configures DDP for CPU modules (a FlexibleRunner's FSDP
    strategy: FSDP on the CPU device). Does nothing with GPUs or without a launcher.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ConfigError(f'--launcher {launcher} pins each process to a GPU and this machine '
                          'has none; on CPUs start the processes with torchrun '
                          '(tools/dist_train.sh), i.e. --launcher pytorch.')
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg') or {})
    if dist_cfg.get('backend', 'gloo') != 'gloo':  # nccl and the others need devices
        print_log(f"distributed on CPUs: backend {dist_cfg['backend']!r} -> 'gloo'",
                  logger='current')
    dist_cfg['backend'] = 'gloo'
    if 'timeout' in dist_cfg:  # seconds in mmengine configs
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    if not dist.is_initialized():
        dist.init_process_group(init_method='env://', **dist_cfg)
    if 'runner_type' in cfg:  # a FlexibleRunner: its strategy wraps the model
        strategy = cfg.get('strategy') or {}
        if str(strategy.get('type', '')).endswith('FSDPStrategy'):  # device_id: LOCAL_RANK
            strategy.setdefault('model_wrapper', {}).setdefault('device_id', 'cpu')
        return
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper_class = MODEL_WRAPPERS.get(wrapper.get('type', 'MMDistributedDataParallel'))
    if not (isinstance(wrapper_class, type) and issubclass(wrapper_class,
                                                             DistributedDataParallel)):
        return  # another wrapper: its own config says how it places the model
    wrapper.setdefault('device_ids', None)  # DDP of CPU modules takes no device ids
    wrapper.setdefault('broadcast_buffers', False)  # as mmengine's default DDP
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def default_work_dir(config_path) -> str:
    """``./work_dirs/<config file stem>``, the OpenMMLab convention."""
    return osp.join('./work_dirs', Path(config_path).stem)


def enable_resume(cfg: Config, checkpoint: str = 'auto') -> None:
    """Resume training from ``checkpoint``, or from the newest one in ``cfg.work_dir``.

    With 'auto' and no checkpoint in the work_dir yet, training starts from scratch (still
    initialised from the config's ``load_from``, if any).
    """
    if checkpoint == 'auto':
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir} yet; training from the '
                      'start.', logger='current', level=logging.WARNING)
            return
        checkpoint = latest
    elif not Path(checkpoint).is_file():
        raise FileNotFoundError(f'--resume: checkpoint {checkpoint} does not exist.')
    cfg.load_from = str(checkpoint)
    cfg.resume = True


def enable_amp(cfg: Config) -> None:
    """Switch ``optim_wrapper`` to mixed precision: float16 on a GPU, bfloat16 on the CPU."""
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is None:
        raise ConfigError('--amp needs an optim_wrapper in the config; this one has none.')
    wrapper_type = str(optim_wrapper.get('type', 'OptimWrapper')).split('.')[-1]
    if wrapper_type in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        print_log(f'--amp: optim_wrapper is already {wrapper_type}.', logger='current')
        return
    if wrapper_type != 'OptimWrapper':
        raise ConfigError(f'--amp turns an OptimWrapper into a mixed-precision one; this config '
                          f'uses {wrapper_type!r}. Set its mixed precision in the config.')
    if get_device() == 'cpu':
        optim_wrapper.type = 'CPUAmpOptimWrapper'
        optim_wrapper.dtype = 'bfloat16'
    else:
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.dtype = 'float16'
        optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_show_dir(cfg: Config, show_dir: str) -> None:
    """Make the config's visualization hook draw test predictions into ``show_dir``."""
    hooks = list((cfg.get('default_hooks') or {}).values()) + list(cfg.get('custom_hooks') or [])
    drawing = [hook for hook in hooks
               if hook and str(hook.get('type', '')).endswith('VisualizationHook')]
    if not drawing:
        raise ConfigError(
            '--show-dir draws predictions with a visualization hook, and this config has '
            "none. Add default_hooks.visualization = dict(type='mmdet.DetVisualizationHook') "
            "and visualizer = dict(type='mmdet.DetLocalVisualizer') (mmseg: "
            "'mmseg.SegVisualizationHook', 'mmseg.SegLocalVisualizer').")
    show_dir = osp.abspath(show_dir)
    for hook in drawing:
        hook['draw'] = True
        hook_class = HOOKS.get(hook['type'])
        if hook_class is not None and 'test_out_dir' in accepted_arguments(hook_class):
            hook['test_out_dir'] = show_dir  # mmdet's hook: an absolute path is kept as is
        elif cfg.get('visualizer') is not None:
            cfg.visualizer['save_dir'] = show_dir  # mmseg's hook saves through the visualizer
        else:
            raise ConfigError(f"--show-dir: {hook['type']} saves its drawings through the "
                              'visualizer, and this config has no visualizer.')
