"""Class-embedding files: a vocabulary embedded once, used by any student.

``tools/embed_text.py`` writes them (hand-written templates or learned prompts); detectors,
segmenters and classifiers read them instead of asking a teacher. A file is a torch
archive of plain data (loadable with ``weights_only=True``)::

    classes              list of C class names, in the order of the rows
    embeddings           float32 (C, D), L2-normalised rows
    teacher_fingerprint  sha256 of the teacher that made them (Teacher.fingerprint)
    source               how they were made, e.g. "templates: shapes" or "CoOp: ckpt.pth"

:func:`load_class_embeddings` checks all of it and, given what the caller expects (class
names, dimension, teacher), says exactly what does not match.
"""
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .class_names import check_class_names

KEYS = ('classes', 'embeddings', 'teacher_fingerprint', 'source')


class ClassEmbeddingFileError(ValueError):
    """A class-embedding file is unreadable or does not fit its use."""


def save_class_embeddings(path, classes: Sequence[str], embeddings: Tensor,
                          teacher_fingerprint: str, source: str) -> Path:
    """Write a class-embedding file atomically; rows are L2-normalised here."""
    classes = _checked_classes(classes, path)
    embeddings = embeddings.detach().float().cpu()
    if embeddings.dim() != 2 or embeddings.shape[0] != len(classes):
        raise ClassEmbeddingFileError(
            f'{len(classes)} classes need embeddings of shape ({len(classes)}, D), got '
            f'{tuple(embeddings.shape)}.')
    if not torch.isfinite(embeddings).all():
        raise ClassEmbeddingFileError('The embeddings contain NaN or infinite values.')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(dict(classes=classes, embeddings=F.normalize(embeddings, dim=-1),
                            teacher_fingerprint=str(teacher_fingerprint), source=str(source)), f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_class_embeddings(path, classes: Optional[Sequence[str]] = None,
                          embed_dim: Optional[int] = None,
                          teacher_fingerprint: Optional[str] = None) -> dict:
    """Read a class-embedding file and check it against what the caller expects.

    Args:
        classes: if given, the file must hold exactly these names; rows are returned in
            this order (the file may list them in another order).
        embed_dim: if given, the embedding dimension D the model uses.
        teacher_fingerprint: if given, the teacher the model was trained with.

    Returns:
        dict with the four keys of the module doc; ``embeddings`` float32 (C, D).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Class-embedding file {path} does not exist; write it with '
                                'tools/embed_text.py.')
    try:
        stored = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:
        raise ClassEmbeddingFileError(f'Cannot read {path} as a class-embedding file '
                                      f'({type(err).__name__}: {err}).') from err
    if not isinstance(stored, dict) or set(KEYS) - set(stored):
        have = sorted(stored) if isinstance(stored, dict) else type(stored).__name__
        raise ClassEmbeddingFileError(f'{path} is not a class-embedding file: it needs keys '
                                      f'{list(KEYS)}, has {have}.')
    names = _checked_classes(stored['classes'], path)
    embeddings = stored['embeddings']
    if not isinstance(embeddings, Tensor) or embeddings.shape[:1] != (len(names),) \
            or embeddings.dim() != 2:
        shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else None
        raise ClassEmbeddingFileError(f'{path} lists {len(names)} classes but holds '
                                      f'embeddings of shape {shape}.')
    if embed_dim is not None and embeddings.shape[1] != embed_dim:
        raise ClassEmbeddingFileError(
            f'{path} holds {embeddings.shape[1]}-d embeddings, the model uses {embed_dim}-d: '
            'the file was made with another teacher.')
    if teacher_fingerprint is not None and stored['teacher_fingerprint'] != teacher_fingerprint:
        raise ClassEmbeddingFileError(
            f"{path} was made with teacher {stored['teacher_fingerprint'][:12]}, the model was "
            f'trained with teacher {teacher_fingerprint[:12]}: its class embeddings live in '
            'another space. Re-embed the vocabulary with the model\'s teacher.')
    if classes is not None:
        classes = list(classes)
        missing = [c for c in classes if c not in names]
        extra = [c for c in names if c not in classes]
        if missing or extra or len(classes) != len(names):
            raise ClassEmbeddingFileError(
                f'{path} holds {len(names)} classes, {len(classes)} were asked for'
                + (f'; missing: {missing[:10]}' if missing else '')
                + (f'; not asked for: {extra[:10]}' if extra else '') + '.')
        embeddings = embeddings[[names.index(c) for c in classes]]
        names = classes
    return dict(classes=names, embeddings=embeddings.float(),
                teacher_fingerprint=stored['teacher_fingerprint'], source=stored['source'])


def _checked_classes(classes, path) -> list:
    try:
        return check_class_names(classes, f'class list of {path}')
    except ValueError as err:
        raise ClassEmbeddingFileError(str(err)) from err
