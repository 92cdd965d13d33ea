"""FSDP through mmengine's FlexibleRunner (configs/_base_/strategies/fsdp.py) on CPUs.

torch's FSDP runs on the CPU with the gloo backend when given ``device_id='cpu'``. Two
processes, each with half the batch and every transformer block an FSDP unit
(``vlkd.transformer_block_wrap_policy``), must train as one process without FSDP on the
whole batch: per iteration the mean of their losses is its loss (the ITC loss gathers its
negatives across processes) and the gathered weights agree after the optimizer steps, also
across a resume from the checkpoint of the FSDP run (weights and SGD momentum).

SGD, not the recipe's AdamW: Adam divides by the gradient's size, and on gradients that are
zero in exact arithmetic (the attention key bias) it turns float noise of either run into
full-size steps.
"""
import copy
import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).parents[1] / 'vlp' / 'objectives'))
from _distributed import run_in_processes  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
ITERATIONS = 3
BATCH = 4  # the single process's batch; each of the two FSDP processes gets half


def _train(rank: int, world_size: int, cfg_dict: dict, fsdp: bool):
    """Train ``ITERATIONS`` iterations in this process; returns the per-iteration losses, the
    model wrapper, the number of FSDP units and (rank 0) the whole state dict after training.

    ``fsdp``: the recipe, stopped one iteration early and resumed (``--resume``) for the
    last; else without its strategy (a plain Runner) in one go.
    """
    from torch.distributed.fsdp import FullyShardedDataParallel

    import vlkd.vlp  # noqa: F401  (the recipe's custom_imports, which Config.fromfile runs)
    from vlkd.engine import build_runner  # imported in the spawned processes
    cfg = Config(cfg_dict, format_python_code=False)
    cfg.train_dataloader.batch_size = BATCH // world_size
    if fsdp:  # the variables torchrun sets
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
        cfg.launcher = 'pytorch'
        cfg.work_dir = f'{cfg.work_dir}/fsdp'
        first = copy.deepcopy(cfg)
        first.train_cfg.max_iters = ITERATIONS - 1
        first.experiment_name = 'first'
        build_runner(first).train()
        cfg.load_from, cfg.resume, cfg.experiment_name = None, True, 'resumed'
    else:
        cfg.pop('runner_type'), cfg.pop('strategy')
        cfg.work_dir = f'{cfg.work_dir}/single'
    runner = build_runner(cfg)
    runner.train()
    state = runner.model.state_dict()  # FSDP: gathered (state_dict_cfg='full'), collective
    units = sum(isinstance(m, FullyShardedDataParallel) for m in runner.model.modules())
    # (the resumed run's history starts with the first run's losses, from the checkpoint)
    return dict(losses=list(runner.message_hub.get_scalar('train/loss').data[0]),
                wrapper=type(runner.model).__name__, units=units,
                state={k: v.clone() for k, v in state.items()} if rank == 0 else None)


def fsdp_recipe(relocate_config) -> Config:
    """clip_shapes_tiny_fsdp.py on the test data, deterministic, with a small ViT image tower
    (the recipe's ResNet has batch norm, whose statistics depend on the batch split) and
    gradient checkpointing."""
    cfg = relocate_config(Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny_fsdp.py'))
    cfg.train_dataloader.dataset = dict(
        type='ImageTextDataset', data_root=cfg.train_dataloader.dataset.data_root,
        ann_file='annotations/captions_train.json', data_prefix=dict(img='images/train/'),
        items='images', test_mode=True, pipeline=cfg.retrieval_pipeline)
    # a fixed order: the two runners draw the shuffling seed at different times otherwise
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True, seed=0)
    cfg.model.model_cfg.vision_cfg = dict(image_size=32, patch_size=8, layers=2, width=32,
                                          head_width=16)
    cfg.model.model_cfg.text_cfg.update(layers=2, width=32, heads=2)
    cfg.model.model_cfg.embed_dim = 32
    cfg.model.grad_checkpointing = True  # in both runs: it combines with FSDP units
    cfg.strategy.model_wrapper.device_id = 'cpu'
    cfg.train_cfg.update(max_iters=ITERATIONS, val_interval=ITERATIONS + 1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=ITERATIONS,
                                        by_epoch=False)  # and at the end of each run
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.randomness = dict(seed=0)
    # SGD: see the module doc; parameter groups with their own decay and lr, as the recipe
    cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.5),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                           custom_keys={'embedding': dict(decay_mult=0.0, lr_mult=0.1)}))
    cfg.param_scheduler = None
    return cfg


def save_initial_weights(cfg: Config, path: Path) -> None:
    """Both runs start from these weights: the runners build their models at different
    points of the random stream."""
    from vlkd.registry import MODELS
    torch.manual_seed(0)
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), path)
    cfg.load_from = str(path)


def test_fsdp_recipe_config():
    cfg = Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny_fsdp.py')
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'VLKDFSDPStrategy'
    assert cfg.model == Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny.py').model


@pytest.mark.slow
def test_fsdp_two_processes_equal_one_process_with_the_doubled_batch(relocate_config,
                                                                      tmp_path):
    cfg = fsdp_recipe(relocate_config)
    save_initial_weights(cfg, tmp_path / 'initial.pth')
    cfg_dict = cfg.to_dict()
    double = run_in_processes(_train, cfg_dict, True, world_size=2)
    single = _train(0, 1, cfg_dict, fsdp=False)  # here: no process group

    assert single['wrapper'] == 'CLIPPretrainer'
    # the root and the 2 + 2 transformer blocks of the two towers
    assert [(run['wrapper'], run['units']) for run in double] == \
        [('VLKDFullyShardedDataParallel', 5)] * 2
    mean_losses = torch.tensor([run['losses'] for run in double]).mean(0)
    torch.testing.assert_close(mean_losses, torch.tensor(single['losses']), rtol=1e-4,
                               atol=1e-6)
    # the gathered weights, and the checkpoint rank 0 wrote: loadable without FSDP
    checkpoint = torch.load(Path(cfg.work_dir) / 'fsdp' / f'iter_{ITERATIONS}.pth',
                            weights_only=False)
    for two in (double[0]['state'], checkpoint['state_dict']):
        assert two.keys() == single['state'].keys()
        for name, value in single['state'].items():
            torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_wrap_policy_makes_units_of_the_transformer_blocks_only():
    from vlkd.registry import MODELS
    from vlkd.vlp.sharding import transformer_block_wrap_policy
    model = MODELS.build(dict(type='CLIPPretrainer', model_cfg=dict(
        embed_dim=16, vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=2,
                                      head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=3))))
    wrapped = [name for name, module in model.named_modules()
               if transformer_block_wrap_policy(module, False, 10 ** 9)]
    assert wrapped == [f'clip.visual.transformer.resblocks.{i}' for i in range(2)] + \
        [f'clip.transformer.resblocks.{i}' for i in range(3)]
    assert transformer_block_wrap_policy(model, True, 0)  # descends into every module


def test_deepspeed_recipe_config_without_deepspeed(tmp_path, monkeypatch):
    """The DeepSpeed variant keeps the recipe's model and optimizer; without the deepspeed
    package (vlkd does not install it) building its runner fails saying how to install it."""
    from vlkd.engine import ConfigError, build_runner
    cfg = Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny_deepspeed.py')
    recipe = Config.fromfile(CONFIGS / 'pretrain' / 'clip_shapes_tiny.py')
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'DeepSpeedStrategy'
    assert cfg.strategy.zero_optimization.stage == 2
    assert cfg.model == recipe.model
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert cfg.optim_wrapper.optimizer == recipe.optim_wrapper.optimizer
    find_spec = importlib.util.find_spec  # a machine without deepspeed, wherever this runs
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *args: None if name == 'deepspeed' else
                        find_spec(name, *args))
    cfg.work_dir = str(tmp_path)
    with pytest.raises(ConfigError, match='pip install deepspeed'):
        build_runner(cfg)


def test_fsdp_wrapper_refuses_momentum_models():
    """An ALBEF-style EMA copy is updated in place, which FSDP's parameter views do not
    allow (found training albef_shapes_tiny under FSDP): a clear error before wrapping."""
    from vlkd.vlp.momentum import MomentumModel
    from vlkd.vlp.sharding import VLKDFullyShardedDataParallel
    model = torch.nn.ModuleDict(dict(online=torch.nn.Linear(2, 2)))
    model['ema'] = MomentumModel(model['online'])
    with pytest.raises(ValueError, match='momentum .*DDP'):
        VLKDFullyShardedDataParallel(model)


def _adam_step_state(rank: int, world_size: int, work_dir: str):
    """One Adam step of a small model under VLKDFSDPStrategy; rank 0 returns the whole
    optimizer state dict the strategy saves in checkpoints."""
    import vlkd.vlp  # noqa: F401  (registers the strategy and the wrapper)
    from mmengine.registry import STRATEGIES
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    strategy = STRATEGIES.build(dict(
        type='VLKDFSDPStrategy', state_dict_cfg='full', work_dir=work_dir,
        model_wrapper=dict(type='VLKDFullyShardedDataParallel', device_id='cpu')))
    torch.manual_seed(0)
    model, optim_wrapper = strategy.prepare(
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=0.1)),
        dispatch_kwargs=dict(max_iters=1))
    inputs = torch.randn(5, 4, generator=torch.Generator().manual_seed(rank))
    optim_wrapper.update_params(model(inputs).pow(2).mean())
    state = strategy.optim_state_dict()
    return state['state'] if rank == 0 else None


@pytest.mark.slow
def test_fsdp_checkpoints_keep_every_optimizer_state(tmp_path):
    """After one Adam step from zero moments, m = (1 - b1) g and v = (1 - b2) g^2 for the
    averaged gradient g, so v = (1 - b2) / (1 - b1)^2 m^2 for every element."""
    state = run_in_processes(_adam_step_state, str(tmp_path), world_size=2)[0]
    assert sorted(state) == ['0.bias', '0.weight', '2.bias', '2.weight']
    for name, moments in state.items():
        m, v = moments['exp_avg'], moments['exp_avg_sq']
        assert m.abs().max() > 0, name
        torch.testing.assert_close(v, (1 - 0.999) / (1 - 0.9) ** 2 * m ** 2, rtol=1e-4,
                                   atol=1e-12, msg=name)
