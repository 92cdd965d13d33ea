"""The local cache of zoo files: where they live, how they are checked, how they get there.

Layout: ``$VLKD_HOME/zoo/<name>/<filename>`` (``VLKD_HOME`` defaults to
``$XDG_CACHE_HOME/vlkd``, i.e. ``~/.cache/vlkd``). Next to each file, while it is being
fetched: ``<filename>.part`` (the download, resumed if interrupted) and ``<filename>.lock``
(a file lock, so that two processes never write the same file). A file is checked against
the manifest's size and sha256 every time it is used; a download is renamed into place only
after that check. Entries without a known sha256 are only stored when the user allows it; the
sha256 computed then is kept in ``<filename>.trusted-sha256`` and checked on later uses.
"""
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from filelock import FileLock, Timeout

from .errors import OfflineError, UnverifiedError
from .fetch import download_file, sha256_file
from .manifest import Manifest, ZooEntry, load_manifest

logger = logging.getLogger(__name__)

HOME_ENV = 'VLKD_HOME'
OFFLINE_ENV = 'VLKD_OFFLINE'
TRUST_SUFFIX = '.trusted-sha256'


@dataclass
class CacheState:
    """What a check of one local file found.

    ``status`` is one of: ``ok`` (matches the manifest's sha256), ``trusted`` (no sha256 in
    the manifest; matches the one recorded when the user accepted it), ``missing``,
    ``mismatch`` (wrong size or sha256), ``unverified`` (present, but nothing to check it
    against).
    """
    name: str
    path: Path
    status: str
    detail: str = ''
    sha256: Optional[str] = None

    @property
    def usable(self) -> bool:
        return self.status in ('ok', 'trusted')


def zoo_home() -> Path:
    """vlkd's cache folder: ``$VLKD_HOME``, else ``$XDG_CACHE_HOME/vlkd`` (``~/.cache/vlkd``)."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    return Path(os.environ.get('XDG_CACHE_HOME') or '~/.cache').expanduser() / 'vlkd'


def is_offline(offline: Optional[bool] = None) -> bool:
    """``offline`` if given, else whether ``$VLKD_OFFLINE`` is set to 1/true/yes/on."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def get_manifest(manifest=None) -> Manifest:
    """``manifest`` itself if it is a :class:`Manifest`, else the one read from that location
    (None: ``$VLKD_ZOO_MANIFEST`` or the repository's ``model_zoo/``)."""
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def cache_path(entry: ZooEntry, dir=None) -> Path:
    """Where ``entry``'s file goes: ``dir/<filename>``, or its place in the cache."""
    if dir is not None:
        return Path(dir).expanduser() / entry.filename
    return zoo_home() / 'zoo' / entry.name / entry.filename


def check_file(entry: ZooEntry, path: Path) -> CacheState:
    """Check the file at ``path`` against ``entry`` (size, then sha256)."""
    path = Path(path)
    if not path.is_file():
        return CacheState(entry.name, path, 'missing', 'not downloaded')
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return CacheState(entry.name, path, 'mismatch',
                          f'{size} bytes, the manifest says {entry.size}')
    digest = sha256_file(path)
    if entry.sha256 is not None:
        if digest == entry.sha256:
            return CacheState(entry.name, path, 'ok', f'sha256 {digest}', digest)
        return CacheState(entry.name, path, 'mismatch',
                          f'sha256 {digest}, the manifest says {entry.sha256}', digest)
    record = _trust_record(path)
    if record.is_file():
        recorded = (record.read_text().split() or [''])[0]
        if digest == recorded:
            return CacheState(entry.name, path, 'trusted',
                              f'sha256 {digest} (accepted without a manifest sha256)', digest)
        return CacheState(entry.name, path, 'mismatch',
                          f'sha256 {digest}, recorded when it was accepted: {recorded}', digest)
    return CacheState(entry.name, path, 'unverified',
                      f'sha256 {digest}; the manifest gives none to check it against', digest)


def download(name: str, dir=None, *, manifest=None, allow_unverified: bool = False,
             offline: Optional[bool] = None, timeout: float = 30.0, retries: int = 3,
             backoff: float = 1.0, progress: Optional[bool] = None) -> Path:
    """Return the verified local file of zoo entry ``name`` (or ``zoo://name``), downloading
    it into the cache (or into ``dir``) if it is not there yet.

    Args:
        manifest: a :class:`Manifest`, or where to read one (default: ``$VLKD_ZOO_MANIFEST``,
            else the repository's ``model_zoo/``).
        allow_unverified: store and use a file whose entry has no sha256 (the computed
            sha256 is logged so that it can be added to the manifest).
        offline: never touch the network (default: ``$VLKD_OFFLINE``).
        timeout: seconds to wait for a connection or for the next bytes.
        retries: attempts per mirror; ``backoff * 2**k`` seconds between them.
        progress: show a progress bar (default: when stderr is a terminal).

    Raises:
        UnknownModelError, OfflineError, UnverifiedError, ChecksumError, DownloadError.
    """
    entry = get_manifest(manifest).get(name)
    dest = cache_path(entry, dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest):
        state = check_file(entry, dest)
        if state.usable:
            return dest
        if state.status == 'unverified':
            if not allow_unverified:
                raise UnverifiedError(
                    f'{entry.name}: {dest} exists but cannot be verified: {entry.source} gives '
                    f'no sha256 for it. Its sha256 is {state.sha256}. '
                    'If you trust the file, pass --trust-unverified (allow_unverified=True), '
                    'or add the sha256 to the manifest.')
            _accept_unverified(entry, dest, state.sha256)
            return dest
        if is_offline(offline):
            found = f'the cached file {dest} is damaged ({state.detail})' \
                if state.status == 'mismatch' else f'it is not in the cache ({dest})'
            raise OfflineError(
                f'{entry.name}: offline mode is on (${OFFLINE_ENV}=1 or offline=True) and '
                f'{found}. Unset {OFFLINE_ENV} to download it from {entry.urls[0]}, or put '
                f'the file there yourself{_sha_clause(entry)}.')
        if entry.sha256 is None and not allow_unverified:
            raise UnverifiedError(
                f'{entry.name}: {entry.source} gives no sha256, so vlkd cannot check what it '
                'would download. To download it anyway, pass --trust-unverified '
                '(tools/zoo.py) or allow_unverified=True; the computed sha256 is then printed '
                'so that it can be added to the manifest.')
        if state.status == 'mismatch':
            logger.warning('%s: the cached file %s is damaged (%s); downloading it again.',
                           entry.name, dest, state.detail)
        part = dest.with_name(dest.name + '.part')
        digest = download_file(
            entry.urls, part, sha256=entry.sha256, size=entry.size, timeout=timeout,
            retries=retries, backoff=backoff,
            progress=sys.stderr.isatty() if progress is None else progress, label=entry.name,
            hint=f'Check the network or proxy (HTTPS_PROXY), or download the file yourself '
                 f'to {dest}{_sha_clause(entry)}.')
        os.replace(part, dest)
        if entry.sha256 is None:
            _accept_unverified(entry, dest, digest)
        else:
            _trust_record(dest).unlink(missing_ok=True)
    return dest


def resolve(name_or_uri: str, **kwargs) -> Path:
    """The verified local file of ``NAME`` or ``zoo://NAME`` in the cache, downloaded if
    needed; keyword arguments as :func:`download` (except ``dir``). For loaders."""
    return download(name_or_uri, **kwargs)


def verify(name: Optional[str] = None, *, dir=None, manifest=None) -> List[CacheState]:
    """Check the local file of ``name``, or of every entry, against the manifest."""
    manifest = get_manifest(manifest)
    entries = [manifest.get(name)] if name is not None else list(manifest)
    return [check_file(entry, cache_path(entry, dir)) for entry in entries]


def _accept_unverified(entry: ZooEntry, dest: Path, digest: str) -> None:
    _trust_record(dest).write_text(f'{digest}\n')
    logger.warning(
        '%s: stored %s WITHOUT verification: %s gives no sha256. Computed sha256: %s '
        '(%d bytes). Add `sha256: %s` and `size: %d` to the entry to make it verified.',
        entry.name, dest, entry.source, digest, dest.stat().st_size, digest,
        dest.stat().st_size)


def _trust_record(path: Path) -> Path:
    return path.with_name(path.name + TRUST_SUFFIX)


def _sha_clause(entry: ZooEntry) -> str:
    return f' (its sha256 must be {entry.sha256})' if entry.sha256 else ''


class _file_lock:
    """Hold ``<path>.lock``; says so when another process holds it and we wait."""

    def __init__(self, path: Path):
        self.lock = FileLock(str(path) + '.lock')
        self.path = path

    def __enter__(self):
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            logger.info('Waiting for another process that is fetching %s (lock %s).',
                        self.path, self.lock.lock_file)
            self.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.lock.release()
