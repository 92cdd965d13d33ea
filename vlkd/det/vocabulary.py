"""Class vocabularies: class names turned into text embeddings by a teacher.

Open-vocabulary heads classify by cosine similarity to these embeddings, so the set of
classes is data, not architecture: the same detector is trained on base names and tested on
base + novel names, or on any list a user gives at inference.
"""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from vlkd.teachers import build_teacher
from vlkd.teachers.class_names import check_class_names


class TextVocabulary:
    """Embeds class names with a teacher's text tower (prompt-ensembled, cached on disk).

    Args:
        teacher: a teacher config dict (built with :func:`vlkd.teachers.build_teacher`) or a
            built :class:`vlkd.teachers.Teacher`. The teacher is loaded on first use and
            released afterwards, so the student never carries its weights.
        templates: prompt templates such as ``'a photo of a {}.'`` or the name of a template
            set in :mod:`vlkd.teachers.templates`; ``None`` uses the teacher's default.
    """

    def __init__(self, teacher: Union[dict, object], templates=None):
        self.teacher_cfg = teacher
        self.templates = templates
        self._fingerprint: Optional[str] = None
        self._teacher = None

    @property
    def fingerprint(self) -> str:
        """Content hash of the teacher, used to check caches built from it."""
        if self._fingerprint is None:
            self.embed(['object'])
        return self._fingerprint

    def embed(self, names: Sequence[str]) -> Tensor:
        """Return L2-normalised embeddings of shape (C, D) for ``names``, on the CPU."""
        names = check_class_names(names)
        if self._teacher is None:
            self._teacher = build_teacher(self.teacher_cfg)
        with torch.no_grad():
            embeddings = self._teacher.encode_class_names(names, self.templates)
        self._fingerprint = self._teacher.fingerprint
        return embeddings.detach().float().cpu()

    def release(self) -> None:
        """Drop the loaded teacher; it is loaded again if more names need embedding."""
        self._teacher = None
