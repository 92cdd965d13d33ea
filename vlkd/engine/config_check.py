"""Config mistakes that mmengine would silently ignore: misspelled keys, misspelled overrides.

mmengine's Runner reads the top-level keys it knows and ignores the rest, and
``--cfg-options`` creates any key it is given. Both turn a typo into a setting that quietly
has no effect. A key is taken for a typo when it is not a known key but lies within one or two
edits of one (helper variables such as ``data_root`` or ``train_pipeline`` are further away);
a scan of mmdet's and mmseg's 1,100 configs flags nothing but their real leftovers.
"""
import difflib
import inspect
import logging
from typing import Dict, Iterable, List, Mapping, Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner


class ConfigError(ValueError):
    """A config that cannot work as written; the message says where and what to do."""


# Top-level keys that mean something: Runner arguments, keys the Runner reads from the
# config itself, config machinery, and keys that OpenMMLab tools read.
RUNNER_KEYS = frozenset(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
KNOWN_TOP_LEVEL_KEYS = RUNNER_KEYS | {
    'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'compile', 'runner_type',
    '_base_', 'custom_imports', 'tta_model', 'tta_pipeline',
}
# mmcv 1.x / mmdet 2.x keys that mmengine ignores, and what replaced them.
LEGACY_KEYS = {
    'data': 'train_dataloader / val_dataloader / test_dataloader',
    'optimizer_config': 'optim_wrapper (clip_grad=..., accumulative_counts=...)',
    'lr_config': 'param_scheduler',
    'momentum_config': 'param_scheduler',
    'runner': "train_cfg (type='IterBasedTrainLoop', max_iters=...)",
    'workflow': 'train_cfg / val_cfg',
    'total_epochs': 'train_cfg.max_epochs',
    'evaluation': 'val_evaluator and train_cfg.val_interval',
    'checkpoint_config': 'default_hooks.checkpoint',
    'log_config': 'default_hooks.logger',
    'resume_from': 'load_from=... with resume=True (or tools/train.py --resume)',
    'dist_params': 'env_cfg.dist_cfg',
    'fp16': "optim_wrapper type 'AmpOptimWrapper' (or tools/train.py --amp)",
}


def edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap adjacent) that turn ``a`` into ``b``."""
    previous2, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def near_misses(name: str, known: Iterable[str]) -> List[str]:
    """Known names that ``name`` is probably a typo of: 1 edit away (2 for names > 8 chars).

    Names of 3 characters or fewer have no near misses (too many words are 1 edit apart).
    """
    matches = []
    for candidate in known:
        allowed = 0 if len(candidate) <= 3 else 1 if len(candidate) <= 8 else 2
        distance = edit_distance(name, candidate)
        if 0 < distance <= allowed:
            matches.append((distance, candidate))
    return [candidate for _, candidate in sorted(matches)]


def suggest(name: str, known: Iterable[str], n: int = 3) -> List[str]:
    """Up to ``n`` known names for a 'did you mean' hint, ignoring case: the near misses of
    ``name`` if it has any, else the names that difflib finds similar."""
    by_lower: Dict[str, str] = {}
    for candidate in known:
        by_lower.setdefault(candidate.lower(), candidate)
    lower = name.lower()
    if lower in by_lower:
        return [by_lower[lower]] if by_lower[lower] != name else []
    matches = near_misses(lower, by_lower) or difflib.get_close_matches(
        lower, list(by_lower), n=n, cutoff=0.6)
    return [by_lower[match] for match in matches[:n]]


def did_you_mean(names: List[str]) -> str:
    if not names:
        return ''
    return '; did you mean ' + ' or '.join(repr(name) for name in names) + '?'


def check_config(cfg: Config) -> None:
    """Raise ConfigError for top-level keys that mmengine's Runner would silently ignore.

    Flags keys within one or two edits of a Runner key (``train_dataloder``) and keys of the
    mmcv 1.x config format (``lr_config``). Other unknown keys are helper variables.
    """
    problems = []
    for key in cfg.keys():
        if key in KNOWN_TOP_LEVEL_KEYS:
            continue
        if key in LEGACY_KEYS:
            problems.append(f'config key {key!r} belongs to the mmcv 1.x config format and is '
                            f'ignored by mmengine; use {LEGACY_KEYS[key]} instead (or rename '
                            'it if it is a helper variable of your own).')
            continue
        matches = near_misses(key, RUNNER_KEYS)
        if matches:
            problems.append(f'unknown config key {key!r}{did_you_mean(matches)} (mmengine '
                            'ignores unknown top-level keys, so it would have no effect).')
    if problems:
        where = f' in {cfg.filename}' if cfg.filename else ''
        raise ConfigError(f'config error{where}:\n  ' + '\n  '.join(problems))


def check_cfg_options(cfg: Config, options: Optional[Dict[str, object]]) -> None:
    """Check ``--cfg-options`` key paths (``a.b.0.c``) before they are merged into ``cfg``.

    A path whose missing part is a near miss of a key that exists at that place raises
    ConfigError; any other path that does not exist yet is merged as a new key, with a
    warning (new keys are legitimate: an argument the config leaves at its default).
    """
    for full_key in options or {}:
        parts = full_key.split('.')
        node: object = cfg
        for depth, part in enumerate(parts):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if isinstance(node, (Mapping, Config)) and part in node:
                node = node[part]
                continue
            parent = '.'.join(parts[:depth])
            siblings = list(node.keys()) if isinstance(node, (Mapping, Config)) else []
            if depth == 0:
                if part in KNOWN_TOP_LEVEL_KEYS:
                    break
                siblings += list(RUNNER_KEYS)
            matches = [f'{parent}.{m}' if parent else m for m in near_misses(part, siblings)]
            if matches:
                raise ConfigError(f'--cfg-options {full_key}: the config has no key '
                                  f"{'.'.join(parts[:depth + 1])!r}{did_you_mean(matches)}")
            print_log(f"--cfg-options {full_key}: {'.'.join(parts[:depth + 1])!r} is not in "
                      'the config; adding it as a new key.',
                      logger='current', level=logging.WARNING)
            break
