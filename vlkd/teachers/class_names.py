"""Class-name lists, checked once for every vocabulary vlkd accepts."""
from typing import Sequence


def check_class_names(names: Sequence[str], what: str = 'class list') -> list:
    """Return ``names`` as a list after rejecting empty, blank or duplicated names."""
    names = list(names)
    if not names:
        raise ValueError(f'The {what} is empty: give at least one class name.')
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f'The {what} has an empty name at position {i}: {names!r}')
    seen = set()
    dups = [n for n in names if n in seen or seen.add(n)]
    if dups:
        raise ValueError(f'The {what} repeats {sorted(set(dups))}: each class must appear once.')
    return names
