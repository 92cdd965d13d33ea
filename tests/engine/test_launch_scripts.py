"""tools/slurm_train.sh: the srun command line it builds, captured by stand-in executables.

The stand-ins replace only the cluster (``srun``) and print the arguments they get; the test
checks the shell wrapper, not training.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'slurm_train.sh'


@pytest.fixture
def fake_srun(tmp_path):
    srun = tmp_path / 'srun'
    srun.write_text('#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n')
    srun.chmod(0o755)
    return srun


def run_script(args, **env):
    return subprocess.run(['bash', str(SCRIPT), *args], env=dict(os.environ, **env),
                          capture_output=True, text=True)


def test_slurm_train_sh_is_executable():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith('#!/usr/bin/env bash')


def test_slurm_train_sh_builds_the_srun_command(fake_srun):
    result = run_script(['gpu', 'clip', 'cfg.py', '16', '--amp', '--work-dir', 'w d'],
                        SRUN=str(fake_srun), PYTHON='py3', GPUS_PER_NODE='8',
                        CPUS_PER_TASK='6', SRUN_ARGS='--time=1:00:00 --exclusive')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        '--partition=gpu', '--job-name=clip', '--gres=gpu:8', '--ntasks=16',
        '--ntasks-per-node=8', '--cpus-per-task=6', '--kill-on-bad-exit=1',
        '--time=1:00:00', '--exclusive',
        'py3', '-u', str(ROOT / 'tools' / 'train.py'), 'cfg.py', '--launcher', 'slurm',
        '--amp', '--work-dir', 'w d']


def test_slurm_train_sh_defaults(fake_srun):
    """Fewer GPUs than a node: one node with that many GPUs; 5 CPUs per task."""
    result = run_script(['p', 'j', 'cfg.py', '2'], SRUN=str(fake_srun))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2:6] == ['--gres=gpu:2', '--ntasks=2', '--ntasks-per-node=2',
                          '--cpus-per-task=5']
    assert lines[7:] == ['python', '-u', str(ROOT / 'tools' / 'train.py'), 'cfg.py',
                         '--launcher', 'slurm']


@pytest.mark.parametrize('args, env, message', [
    (['p', 'j', 'cfg.py'], {}, 'usage'),
    (['p', 'j', 'cfg.py', 'eight'], {}, "GPUS must be a positive integer, got 'eight'"),
    (['p', 'j', 'cfg.py', '8'], {'GPUS_PER_NODE': '0'}, 'GPUS_PER_NODE must be a positive'),
])
def test_slurm_train_sh_usage_errors(fake_srun, args, env, message):
    result = run_script(args, SRUN=str(fake_srun), **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ''  # srun was not started
