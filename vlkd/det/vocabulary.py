"""Class vocabularies: class names turned into text embeddings by a teacher.

Open-vocabulary heads classify by cosine similarity to these embeddings, so the set of
classes is data, not architecture: the same detector is trained on base names and tested on
base + novel names, or on any list a user gives at inference.

A vocabulary comes from a teacher (names are embedded on demand, prompt-ensembled over
templates) or from a class-embedding file written once by ``tools/embed_text.py`` (see
:mod:`vlkd.teachers.embedding_file`). :func:`read_vocabulary_file` reads what users pass on
the command line: a text file of names or a class-embedding file.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from vlkd.teachers import build_teacher
from vlkd.teachers.class_names import check_class_names
from vlkd.teachers.embedding_file import ClassEmbeddingFileError, load_class_embeddings

__all__ = ['TextVocabulary', 'check_class_names', 'read_vocabulary_file']

# suffixes of class-embedding files (torch archives); anything else is read as text
EMBEDDING_FILE_SUFFIXES = ('.pt', '.pth')


class TextVocabulary:
    """Embeds class names with a teacher's text tower, or reads them from a file.

    Give exactly one of ``teacher`` and ``embedding_file``.

    Args:
        teacher: a teacher config dict (built with :func:`vlkd.teachers.build_teacher`) or a
            built :class:`vlkd.teachers.Teacher`. The teacher is loaded on first use and
            released afterwards, so the student never carries its weights.
        templates: prompt templates such as ``'a photo of a {}.'`` or the name of a template
            set in :mod:`vlkd.teachers.templates`; ``None`` uses the teacher's default.
            Each class embedding is the prompt ensemble over the templates.
        embedding_file: a class-embedding file (``tools/embed_text.py``); names are looked
            up in it, in any order, and the fingerprint is that of the teacher that made it.
    """

    def __init__(self, teacher: Union[dict, object, None] = None, templates=None,
                 embedding_file: Optional[str] = None):
        if (teacher is None) == (embedding_file is None):
            raise ValueError('A vocabulary needs exactly one of teacher=dict(type=...) (names '
                             'embedded by the teacher) and embedding_file=PATH (a file written '
                             f'by tools/embed_text.py); got teacher={teacher!r}, '
                             f'embedding_file={embedding_file!r}.')
        if embedding_file is not None and templates is not None:
            raise ValueError('templates apply to teacher vocabularies; an embedding file was '
                             'embedded with its own templates. Remove templates.')
        self.teacher_cfg = teacher
        self.templates = templates
        self.embedding_file = embedding_file
        self._fingerprint: Optional[str] = None
        self._teacher = None
        self._file: Optional[dict] = None

    @property
    def fingerprint(self) -> str:
        """Content hash of the teacher, used to check caches built from it."""
        if self._fingerprint is None:
            if self.embedding_file is not None:
                self._fingerprint = self._read_file()['teacher_fingerprint']
            else:
                self.embed(['object'])
        return self._fingerprint

    def embed(self, names: Sequence[str]) -> Tensor:
        """Return L2-normalised embeddings of shape (C, D) for ``names``, on the CPU."""
        names = check_class_names(names)
        if self.embedding_file is not None:
            return self._rows_of(names)
        if self._teacher is None:
            self._teacher = build_teacher(self.teacher_cfg)
        with torch.no_grad():
            embeddings = self._teacher.encode_class_names(names, self.templates)
        self._fingerprint = self._teacher.fingerprint
        return embeddings.detach().float().cpu()

    def release(self) -> None:
        """Drop the loaded teacher; it is loaded again if more names need embedding."""
        self._teacher = None

    # -- embedding files ----------------------------------------------------------------
    def _read_file(self) -> dict:
        if self._file is None:
            self._file = load_class_embeddings(self.embedding_file)
            self._fingerprint = self._file['teacher_fingerprint']
        return self._file

    def _rows_of(self, names: List[str]) -> Tensor:
        stored = self._read_file()
        missing = [name for name in names if name not in stored['classes']]
        if missing:
            raise ClassEmbeddingFileError(
                f'Classes {missing[:10]} are not in the embedding file {self.embedding_file} '
                f"(it holds {len(stored['classes'])}: {stored['classes'][:10]}"
                f"{' ...' if len(stored['classes']) > 10 else ''}). Embed them with "
                'tools/embed_text.py, or give the vocabulary a teacher instead of a file.')
        rows = [stored['classes'].index(name) for name in names]
        return stored['embeddings'][rows].clone()


def read_vocabulary_file(path, embed_dim: Optional[int] = None,
                         teacher_fingerprint: Optional[str] = None
                         ) -> Tuple[List[str], Optional[Tensor]]:
    """Read a vocabulary given by a user.

    ``path`` is a class-embedding file (``.pt`` / ``.pth``, written by
    ``tools/embed_text.py``) or a text file with one class name per line (surrounding
    spaces are stripped; the file may end with a newline).

    Args:
        embed_dim, teacher_fingerprint: what a class-embedding file must match (the model's
            embedding dimension and teacher); see :func:`load_class_embeddings`.

    Returns:
        ``(names, embeddings)``: embeddings (C, D) for class-embedding files, else None.

    Raises:
        ValueError: a blank line, a repeated name or no name at all (with line numbers);
            :class:`ClassEmbeddingFileError` for an embedding file that does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Vocabulary file {path} does not exist.')
    if path.suffix in EMBEDDING_FILE_SUFFIXES:
        stored = load_class_embeddings(path, embed_dim=embed_dim,
                                       teacher_fingerprint=teacher_fingerprint)
        return stored['classes'], stored['embeddings']
    lines = path.read_text(encoding='utf-8').splitlines()
    names, first_line = [], {}
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise ValueError(f'Vocabulary file {path}: line {number} is empty; write one class '
                             'name per line, without blank lines.')
        if name in first_line:
            raise ValueError(f'Vocabulary file {path}: {name!r} on line {number} repeats line '
                             f'{first_line[name]}; each class must appear once.')
        first_line[name] = number
        names.append(name)
    if not names:
        raise ValueError(f'Vocabulary file {path} holds no class names.')
    return names, None
