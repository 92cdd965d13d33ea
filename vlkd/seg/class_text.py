"""Class-name text embeddings of a segmentation vocabulary, with synonyms.

A class may be described by several names (``synonyms=dict(background=['noisy background',
'striped background'])``, or ADE20K's 'windowpane' as ['window']): its embedding is the
normalised mean of the prompt-ensembled embeddings of its names.
"""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vlkd.teachers.class_names import check_class_names


def class_text_embeddings(embed: Callable[[list], Tensor], classes: Sequence[str],
                          synonyms: Optional[Dict[str, Sequence[str]]] = None) -> Tensor:
    """(C, D) L2-normalised embeddings of ``classes``.

    Args:
        embed: names -> (N, D) normalised embeddings (a teacher's ``encode_class_names`` or
            :meth:`vlkd.det.TextVocabulary.embed`).
        classes: the class names, in label order.
        synonyms: optional names that describe a class instead of its own name.
    """
    classes = check_class_names(classes, 'class list')
    synonyms = dict(synonyms or {})
    unknown = sorted(set(synonyms) - set(classes))
    if unknown:
        raise ValueError(f'synonyms are given for {unknown}, which are not in the class list '
                         f'{classes[:8]}{"..." if len(classes) > 8 else ""}.')
    groups = []
    for name in classes:
        names = synonyms.get(name, [name])
        if isinstance(names, str) or not names:
            raise ValueError(f'synonyms[{name!r}] must be a non-empty list of names, got '
                             f'{names!r}.')
        groups.append(list(names))
    flat = list(dict.fromkeys(n for group in groups for n in group))
    embeddings = embed(flat)
    rows = [embeddings[[flat.index(n) for n in group]].mean(0) for group in groups]
    return F.normalize(torch.stack(rows), dim=-1)
