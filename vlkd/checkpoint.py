"""Finding checkpoint files from what a user or a config names."""
from pathlib import Path


def resolve_checkpoint(path) -> Path:
    """Return the checkpoint file that ``path`` names.

    ``path`` is a checkpoint file, an mmengine work_dir whose ``last_checkpoint`` file
    names the newest checkpoint (what ``tools/train.py`` writes), or ``zoo://NAME`` (the
    verified file from the model zoo, downloaded if needed). Errors say what was looked for
    and how to make it.
    """
    if str(path).startswith('zoo://'):
        from vlkd import zoo
        return zoo.resolve(str(path))
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        pointer = path / 'last_checkpoint'
        if not pointer.is_file():
            raise FileNotFoundError(
                f'{path} is a directory without a last_checkpoint file: it holds no finished '
                'training run. Pass a checkpoint file, or train into this work_dir first.')
        target = Path(pointer.read_text().strip())
        if not target.is_absolute() and not target.is_file():
            target = path / target.name
        if not target.is_file():
            raise FileNotFoundError(f'{pointer} names {target}, which does not exist.')
        return target
    raise FileNotFoundError(
        f'Checkpoint {path} does not exist. Give the path of a .pth file or of a work_dir '
        'written by tools/train.py.')
