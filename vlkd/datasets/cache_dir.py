"""Write-once data directories: generated datasets and extracted features are caches.

A directory ``ROOT`` made by :func:`write_once` is either absent or whole: its contents are
written into a temporary sibling directory that is renamed to ``ROOT`` when complete, with a
``meta.json`` holding at least ``params`` (what the contents were made from). Asking again
with the same ``params`` returns at once; different ``params``, a non-empty ``ROOT`` without
``meta.json`` (not written by vlkd) or one missing an expected file raise
``FileExistsError``: nothing is ever deleted or mixed. Safe against concurrent writers of the
same ``ROOT``.
"""
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Optional, Sequence

__all__ = ['write_once', 'existing_params', 'default_cache_root']


def default_cache_root(prefix: str, params: dict) -> Path:
    """``$VLKD_HOME/data/{prefix}-<hash of params>`` (``VLKD_HOME`` defaults to
    ~/.cache/vlkd): one directory per set of parameters."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    home = Path(os.environ.get('VLKD_HOME', '~/.cache/vlkd')).expanduser()
    return home / 'data' / f'{prefix}-{digest}'


def existing_params(root: Path, expected_files: Sequence[str], what: str) -> Optional[dict]:
    """``params`` of the finished ``what`` at ``root``; None if ``root`` is absent or an empty
    directory. ``expected_files`` (paths relative to ``root``) must all exist."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return None
    if not (root / 'meta.json').is_file():
        raise FileExistsError(
            f'{root} is not empty but has no meta.json, so it is not a finished {what} '
            f'(vlkd writes to a temporary directory and renames it, so this is something '
            f'else). Choose another output directory, or delete {root} if you are sure it '
            f'holds nothing you need.')
    missing = [str(root / p) for p in expected_files if not (root / p).is_file()]
    if missing:
        raise FileExistsError(f'{root} is an incomplete {what} (missing {missing}); delete it '
                              f'and generate again.')
    return json.loads((root / 'meta.json').read_text())['params']


def _check_same_params(root: Path, existing: dict, params: dict, what: str):
    if existing != params:
        diffs = ', '.join(f'{k}: {existing.get(k)} there, {v} asked' for k, v in params.items()
                          if existing.get(k) != v)
        example = f' (e.g. {root}-seed{params["seed"]})' if 'seed' in params else ''
        raise FileExistsError(
            f'{root} already holds {what} generated with different parameters ({diffs}). '
            f'Choose another directory{example} or delete {root}.')


def write_once(root, params: dict, expected_files: Sequence[str],
               write: Callable[[Path], dict], what: str) -> Path:
    """Make ``root`` with ``write(tmp_dir)`` unless it already holds the same ``params``.

    ``write`` fills the directory it is given and returns the ``meta.json`` contents, which
    must include ``params``; ``what`` names the contents in errors ('vlkd-shapes').
    """
    root = Path(root)
    existing = existing_params(root, expected_files, what)
    if existing is not None:
        _check_same_params(root, existing, params, what)
        return root

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    tmp.mkdir()
    try:
        meta = write(tmp)
        if meta.get('params') != params:
            raise RuntimeError(f'{what}: meta.json must hold the params {params}, got '
                               f'{meta.get("params")}')
        (tmp / 'meta.json').write_text(json.dumps(meta, indent=2) + '\n')
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        try:
            tmp.rename(root)
        except OSError:  # another process finished first
            existing = existing_params(root, expected_files, what)
            if existing is None:
                raise
            _check_same_params(root, existing, params, what)
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
