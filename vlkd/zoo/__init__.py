"""The model zoo: a manifest of checkpoints and a cache that downloads and verifies them.

    from vlkd import zoo
    path = zoo.download('clip-vit-b-32-openai')       # verified local file (Path)
    path = zoo.resolve('zoo://clip-vit-b-32-openai')  # the same, for loaders
    zoo.register_zoo_scheme()                         # then load_from = 'zoo://NAME'

The manifest is read from ``$VLKD_ZOO_MANIFEST`` or the repository's ``model_zoo/``
(:mod:`.manifest`); files are cached in ``$VLKD_HOME`` (:mod:`.cache`) and fetched by
:mod:`.fetch`; ``VLKD_OFFLINE=1`` forbids downloads. ``tools/zoo.py`` is the command line.
"""
from .cache import (CacheState, cache_path, check_file, download, get_manifest, is_offline,
                    resolve, verify, zoo_home)
from .checkpoint_scheme import load_from_zoo, register_zoo_scheme
from .errors import (ChecksumError, DownloadError, ManifestError, OfflineError,
                     UnknownModelError, UnverifiedError, ZooError)
from .fetch import sha256_file
from .manifest import Manifest, ZooEntry, load_manifest, strip_scheme
from .readme import render_readme


def list_models(manifest=None):
    """Every :class:`ZooEntry` of the manifest, in manifest order."""
    return list(get_manifest(manifest))


def get_entry(name: str, manifest=None) -> ZooEntry:
    """The :class:`ZooEntry` named ``name`` or ``zoo://name``; suggests close names if none."""
    return get_manifest(manifest).get(name)


__all__ = [
    'CacheState', 'ChecksumError', 'DownloadError', 'Manifest', 'ManifestError', 'OfflineError',
    'UnknownModelError', 'UnverifiedError', 'ZooEntry', 'ZooError', 'cache_path', 'check_file',
    'download', 'get_entry', 'get_manifest', 'is_offline', 'list_models', 'load_from_zoo',
    'load_manifest', 'register_zoo_scheme', 'render_readme', 'resolve', 'sha256_file',
    'strip_scheme', 'verify', 'zoo_home',
]
