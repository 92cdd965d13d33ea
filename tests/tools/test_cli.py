"""tools/train.py and tools/test.py on a toy regression config, and their error messages.

The toy model (one linear layer on fixed random tensors) exists to test the command line only;
the tools are called in-process through their ``main(argv)``.
"""
import importlib.util
import itertools
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel

import vlkd  # noqa: F401  (installs the compat layer before mmdet)
from vlkd.engine import (ConfigError, CPUAmpOptimWrapper, check_cfg_options, check_config,
                         enable_amp, enable_show_dir)
from vlkd.registry import DATASETS, HOOKS, METRICS, MODELS

ROOT = Path(__file__).resolve().parents[2]


def load_tool(name):
    path = ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'vlkd_tools_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool, test_tool = load_tool('train'), load_tool('test')


@MODELS.register_module(force=True)
class CLIToyRegressor(BaseModel):
    """y = w.x + b on (N, in_features) inputs; remembers the dtype of its last output."""

    def __init__(self, in_features=4, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.linear = torch.nn.Linear(in_features, 1)
        self.last_output_dtype = None

    def forward(self, inputs, targets, mode='tensor'):
        outputs = self.linear(inputs).squeeze(-1)
        self.last_output_dtype = outputs.dtype
        if mode == 'loss':
            return dict(loss=F.mse_loss(outputs.float(), targets))
        if mode == 'predict':
            return [dict(pred=float(p), target=float(t)) for p, t in zip(outputs, targets)]
        return outputs


@DATASETS.register_module(force=True)
class CLIToyDataset(torch.utils.data.Dataset):
    """``size`` fixed samples: inputs (in_features,), targets = inputs . [1..n] + noise."""

    def __init__(self, size=32, in_features=4, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(size, in_features, generator=generator)
        self.targets = (self.inputs @ torch.arange(1.0, in_features + 1)
                        + 0.1 * torch.randn(size, generator=generator))

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return dict(inputs=self.inputs[index], targets=self.targets[index])


@METRICS.register_module(force=True)
class CLIToyMSE(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results += [(s['pred'] - s['target']) ** 2 for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


TOY_CONFIG = """
default_scope = 'vlkd'
model = dict(type='CLIToyRegressor', in_features=4)
toy_dataset = dict(type='CLIToyDataset', size=32)  # a helper variable, not a Runner key
train_dataloader = dict(batch_size=4, num_workers=0, dataset=toy_dataset,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        collate_fn=dict(type='default_collate'))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6, val_interval=1000)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=0.05, weight_decay=0.01))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[4], gamma=0.5)]
test_dataloader = dict(batch_size=8, num_workers=0,
                       dataset=dict(type='CLIToyDataset', size=16, seed=1),
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       collate_fn=dict(type='default_collate'))
test_cfg = dict(type='TestLoop')
test_evaluator = dict(type='CLIToyMSE')
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""
_run_ids = itertools.count()


def write_config(tmp_path, text=TOY_CONFIG, name='toy.py'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def options(*pairs):
    """--cfg-options with a unique experiment name: in one process, Runners that share a
    name (config name + start second) would share their logger and message hub."""
    return ['--cfg-options', f'experiment_name=cli_test_{next(_run_ids)}', *pairs]


def train(config, work_dir, *args, cfg_options=()):
    return train_tool.main([config, '--work-dir', str(work_dir), *args,
                            *options(*cfg_options)])


def weights_and_optimizer(checkpoint):
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    return state['state_dict'], state['optimizer']['state']


def test_train_runs_writes_checkpoints_and_applies_cfg_options(tmp_path):
    runner = train(write_config(tmp_path), tmp_path / 'work',
                   cfg_options=['train_cfg.max_iters=4', 'optim_wrapper.optimizer.lr=0.02'])
    assert runner.iter == 4
    assert (tmp_path / 'work' / 'iter_3.pth').is_file()
    assert (tmp_path / 'work' / 'iter_4.pth').is_file()
    assert runner.optim_wrapper.optimizer.param_groups[0]['initial_lr'] == 0.02
    weights, _ = weights_and_optimizer(tmp_path / 'work' / 'iter_4.pth')
    assert torch.equal(weights['linear.weight'], runner.model.linear.weight.detach())


class TrainingInterrupted(Exception):
    pass


@HOOKS.register_module(force=True)
class CLIInterruptAt(Hook):
    """Stops training with an exception after ``iteration`` (and its checkpoint)."""
    priority = 'LOWEST'  # after CheckpointHook

    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            raise TrainingInterrupted(f'stopped after iteration {self.iteration}')


def test_resumed_training_equals_straight_training(tmp_path):
    """6 iterations straight == 3, interrupted, + resume + 3; AdamW state, LR step at iter 4.

    (The interruption keeps max_iters: mmengine ends schedulers at max_iters, so a first
    half run with max_iters=3 would schedule differently.)
    """
    config = write_config(tmp_path)
    interrupted = write_config(tmp_path, "_base_ = './toy.py'\n"
                               "custom_hooks = [dict(type='CLIInterruptAt', iteration=3)]\n",
                               name='toy_interrupted.py')
    train(config, tmp_path / 'straight')
    with pytest.raises(TrainingInterrupted):
        train(interrupted, tmp_path / 'halves')
    train(config, tmp_path / 'halves', '--resume')  # the newest checkpoint: iter_3
    train(config, tmp_path / 'from_file', '--resume', str(tmp_path / 'straight' / 'iter_3.pth'))

    straight_weights, straight_adam = weights_and_optimizer(tmp_path / 'straight' / 'iter_6.pth')
    for resumed in ('halves', 'from_file'):
        weights, adam = weights_and_optimizer(tmp_path / resumed / 'iter_6.pth')
        for name in straight_weights:
            assert torch.equal(weights[name], straight_weights[name]), (resumed, name)
        for index, state in straight_adam.items():
            assert torch.equal(adam[index]['exp_avg'], state['exp_avg'])
            assert torch.equal(adam[index]['exp_avg_sq'], state['exp_avg_sq'])
    # and resuming really continued: the first half alone ends elsewhere
    half_weights, _ = weights_and_optimizer(tmp_path / 'halves' / 'iter_3.pth')
    assert not torch.equal(half_weights['linear.weight'], straight_weights['linear.weight'])


def test_test_tool_evaluates_a_checkpoint(tmp_path):
    config = write_config(tmp_path)
    train(config, tmp_path / 'work', cfg_options=['train_cfg.max_iters=3'])
    metrics = test_tool.main([config, str(tmp_path / 'work'), '--work-dir',
                              str(tmp_path / 'test'), *options()])
    weights, _ = weights_and_optimizer(tmp_path / 'work' / 'iter_3.pth')
    data = CLIToyDataset(size=16, seed=1)
    predictions = data.inputs @ weights['linear.weight'][0] + weights['linear.bias'][0]
    expected = float(((predictions - data.targets) ** 2).mean())
    assert metrics['toy/mse'] == pytest.approx(expected, rel=1e-5)


def test_amp_on_cpu_trains_in_bfloat16(tmp_path):
    runner = train(write_config(tmp_path), tmp_path / 'work', '--amp',
                   cfg_options=['train_cfg.max_iters=2'])
    assert isinstance(runner.optim_wrapper, CPUAmpOptimWrapper)
    assert runner.model.last_output_dtype == torch.bfloat16
    assert runner.model.linear.weight.dtype == torch.float32


def test_amp_on_gpu_uses_mmengine_amp_in_float16(monkeypatch):
    monkeypatch.setattr('vlkd.engine.runner.get_device', lambda: 'cuda')
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD'))))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'


@pytest.mark.parametrize('old, new, message', [
    ('train_dataloader = dict(', 'train_dataloder = dict(',
     "unknown config key 'train_dataloder'; did you mean 'train_dataloader'?"),
    ("type='CLIToyRegressor'", "type='CLIToyRegresor'",
     r"unknown type 'CLIToyRegresor' \(at model\).*did you mean 'CLIToyRegressor'"),
    ("type='CLIToyRegressor'", "type='mmdet.FasterRCN'",
     r"unknown type 'mmdet.FasterRCN' \(at model\).*did you mean 'mmdet.FasterRCNN'"),
    ("type='CLIToyDataset', size=32", "type='CLIToyDatset', size=32",
     r"'CLIToyDatset' \(at toy_dataset, train_dataloader.dataset\).*'CLIToyDataset'"),
    ('in_features=4', 'in_featurs=4',
     "model: CLIToyRegressor got the unknown argument 'in_featurs'; did you mean "
     "'in_features'?"),
    ('max_iters=6', 'max_iter=6',
     "train_cfg: IterBasedTrainLoop got the unknown argument 'max_iter'; did you mean "
     "'max_iters'?"),
    ('randomness = dict(seed=0)',
     "randomness = dict(seed=0)\ncustom_hooks = [dict(type='CLIInterruptAt')]",
     r"custom_hooks\[0\]: CLIInterruptAt needs the argument\(s\) 'iteration'"),
])
def test_config_mistakes_are_named_with_a_suggestion(tmp_path, old, new, message):
    assert old in TOY_CONFIG
    config = write_config(tmp_path, TOY_CONFIG.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as error:
        train(config, tmp_path / 'work')
    if 'unknown config key' not in message:
        assert error.value.__cause__ is not None  # the original error stays chained


def test_cfg_options_near_miss_is_an_error(tmp_path):
    config = write_config(tmp_path)
    with pytest.raises(ConfigError, match=r"train_cfg.max_iter'; did you mean "
                                          r"'train_cfg.max_iters'\?"):
        train(config, tmp_path / 'work', cfg_options=['train_cfg.max_iter=2'])
    with pytest.raises(ConfigError, match=r"did you mean 'optim_wrapper.optimizer.weight_decay'"):
        train(config, tmp_path / 'work', cfg_options=['optim_wrapper.optimizer.weight_decy=0.1'])
    # too short to call a near miss here ('lr'): merged, then caught when AdamW is built
    with pytest.raises(ConfigError, match="optim_wrapper.optimizer: AdamW got the unknown "
                                          "argument 'lrr'; did you mean 'lr'?"):
        train(config, tmp_path / 'work', cfg_options=['optim_wrapper.optimizer.lrr=0.1'])


def test_cfg_options_new_keys_and_list_indices_are_accepted():
    cfg = Config.fromstring(TOY_CONFIG, '.py')
    check_cfg_options(cfg, {'default_hooks.logger.log_metric_by_epoch': False,  # a new key
                            'param_scheduler.0.gamma': 0.1, 'resume': True})


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        train_tool.main([str(tmp_path / 'nowhere.py')])
    config = write_config(tmp_path)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        test_tool.main([config, str(tmp_path / 'missing.pth')])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        train(config, tmp_path / 'work', '--resume', str(tmp_path / 'missing.pth'))


def test_show_dir_needs_a_visualization_hook(tmp_path):
    config = write_config(tmp_path)
    checkpoint = tmp_path / 'never_loaded.pth'
    checkpoint.write_bytes(b'')
    with pytest.raises(ConfigError, match='--show-dir .* visualization hook'):
        test_tool.main([config, str(checkpoint), '--show-dir', str(tmp_path / 'shows')])


def test_show_dir_turns_on_mmdet_drawing(tmp_path):
    cfg = Config(dict(default_hooks=dict(visualization=dict(type='mmdet.DetVisualizationHook'))))
    enable_show_dir(cfg, str(tmp_path / 'shows'))
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.test_out_dir == str(tmp_path / 'shows')


def test_check_config_flags_typos_and_legacy_keys_not_helper_variables():
    helpers = dict(data_root='d/', dataset_type='X', train_pipeline=[], test_pipeline=[],
                   classes=['a'], base_classes=['a'], novel_classes=['b'], backend_args=None,
                   optimizer=dict(type='SGD'), image_scale=(1, 1), tta_pipeline=[])
    check_config(Config(dict(model=dict(type='M'), **helpers)))
    for key, message in [('optim_wraper', "did you mean 'optim_wrapper'"),
                         ('models', "did you mean 'model'"),
                         ('lr_config', "use param_scheduler instead")]:
        with pytest.raises(ConfigError, match=message):
            check_config(Config({key: dict(), **helpers}))


def test_dist_train_sh_launches_torchrun(tmp_path):
    """The script's torchrun command line, captured by a stand-in python."""
    fake_python = tmp_path / 'python'
    fake_python.write_text('#!/bin/sh\necho "$@"\n')
    fake_python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake_python), PORT='29999', NNODES='2', NODE_RANK='1',
               MASTER_ADDR='10.0.0.1')
    result = subprocess.run(['bash', str(ROOT / 'tools' / 'dist_train.sh'), 'cfg.py', '4',
                             '--amp'], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1',
        '--master_port=29999', '--nproc_per_node=4', str(ROOT / 'tools' / 'train.py'),
        'cfg.py', '--launcher', 'pytorch', '--amp']
    usage = subprocess.run(['bash', str(ROOT / 'tools' / 'dist_train.sh')], capture_output=True,
                           text=True)
    assert usage.returncode == 2 and 'usage' in usage.stderr
