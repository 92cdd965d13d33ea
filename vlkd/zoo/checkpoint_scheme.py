"""``zoo://NAME`` checkpoints in mmengine: ``load_from = 'zoo://NAME'``, ``load_checkpoint``."""
from .cache import resolve
from .manifest import ZOO_SCHEME


def load_from_zoo(filename: str, map_location=None):
    """mmengine checkpoint loader for ``zoo://NAME``: the verified cached file (downloaded
    if needed, see :func:`vlkd.zoo.resolve`), read by mmengine's local-file loader."""
    from mmengine.runner.checkpoint import load_from_local
    return load_from_local(str(resolve(filename)), map_location)


def register_zoo_scheme() -> None:
    """Make mmengine's ``CheckpointLoader`` load ``zoo://`` paths; safe to call repeatedly."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=ZOO_SCHEME, loader=load_from_zoo, force=True)
