"""Running configs: config checks, build-error messages, Runner set-up, CPU mixed precision,
the optimizer constructor."""
from .amp import CPUAmpOptimWrapper
from .build_errors import explain_build_errors
from .config_check import ConfigError, check_cfg_options, check_config
from .optim_constructor import GroupedOptimWrapperConstructor, merge_param_groups
from .runner import (build_runner, default_work_dir, enable_amp, enable_resume,
                     enable_show_dir, load_config)

__all__ = [
    'CPUAmpOptimWrapper', 'ConfigError', 'build_runner', 'check_cfg_options', 'check_config',
    'default_work_dir', 'enable_amp', 'enable_resume', 'enable_show_dir',
    'explain_build_errors', 'GroupedOptimWrapperConstructor', 'load_config',
    'merge_param_groups',
]
