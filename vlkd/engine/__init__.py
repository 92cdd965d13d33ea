"""Running configs: config checks, build-error messages, Runner set-up, CPU mixed precision."""
from .amp import CPUAmpOptimWrapper
from .build_errors import explain_build_errors
from .config_check import ConfigError, check_cfg_options, check_config
from .runner import (build_runner, default_work_dir, enable_amp, enable_resume,
                     enable_show_dir, load_config)

__all__ = [
    'CPUAmpOptimWrapper', 'ConfigError', 'build_runner', 'check_cfg_options', 'check_config',
    'default_work_dir', 'enable_amp', 'enable_resume', 'enable_show_dir',
    'explain_build_errors', 'load_config',
]
