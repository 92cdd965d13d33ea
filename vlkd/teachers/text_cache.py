"""On-disk cache of class-name embeddings, keyed by what they are computed from.

``$VLKD_HOME/cache/text/<sha256>.pt`` (``VLKD_HOME`` defaults to ``~/.cache/vlkd``) holds
the (C, D) float32 embeddings of C class names; the key is the sha256 of the teacher's
fingerprint, the names and the templates, so any change to one of them is a different
file. Files are written atomically (a temporary file renamed into place); a file that
cannot be read or does not hold what its name promises is ignored and recomputed.
"""
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
from mmengine.logging import print_log
from torch import Tensor


def vlkd_home() -> Path:
    """``$VLKD_HOME``, default ``~/.cache/vlkd``."""
    return Path(os.environ.get('VLKD_HOME', '~/.cache/vlkd')).expanduser()


class TextEmbeddingCache:
    """Class-name embeddings stored under ``root`` (default ``$VLKD_HOME/cache/text``)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else vlkd_home() / 'cache' / 'text'

    @staticmethod
    def key(fingerprint: str, names: Sequence[str], templates: Sequence[str]) -> str:
        """sha256 (hex) of the teacher fingerprint, the class names and the templates."""
        content = json.dumps(dict(fingerprint=fingerprint, names=list(names),
                                  templates=list(templates)), ensure_ascii=False)
        return hashlib.sha256(content.encode('utf-8')).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f'{key}.pt'

    def load(self, key: str, num_names: int, embed_dim: int) -> Optional[Tensor]:
        """The cached (num_names, embed_dim) embeddings, or None if absent or unusable."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location='cpu', weights_only=True)
            embeddings = stored['embeddings']
            matches = (stored['key'] == key and isinstance(embeddings, Tensor)
                       and embeddings.shape == (num_names, embed_dim)
                       and bool(torch.isfinite(embeddings).all()))
            problem = None if matches else 'its content does not match its key'
        except Exception as err:  # noqa: BLE001  (any unreadable file is recomputed)
            problem = f'{type(err).__name__}: {err}'
        if problem is not None:
            print_log(f'Ignoring the corrupt text-embedding cache file {path} ({problem}); '
                      'recomputing it.', logger='current', level=logging.WARNING)
            return None
        return embeddings

    def save(self, key: str, embeddings: Tensor) -> Path:
        """Write ``embeddings`` (C, D) for ``key`` atomically; returns the file."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f'.{key[:16]}.', suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                torch.save(dict(key=key, embeddings=embeddings.detach().float().cpu()), f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
