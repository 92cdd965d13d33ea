"""Class vocabularies given as lists, class-name files or base / novel halves of them.

A class-name file lists one class per line, in label order: the image folder name, then
(after white space) the readable name that text towers read::

    n01440764 tench
    n01443537 goldfish
    Faces_easy face

A line with the folder name alone uses it as the name with underscores as spaces
(``sea_lion`` -> "sea lion"). Empty lines and lines starting with ``#`` are skipped.

Base-to-novel generalisation (CoCoOp's protocol) splits a vocabulary in label order: the
first ceil(C / 2) classes are base, the rest novel.
"""
import math
from pathlib import Path
from typing import List, Sequence, Tuple, Union

from vlkd.teachers.class_names import check_class_names

__all__ = ['ClassSpec', 'read_class_file', 'base_novel_split', 'resolve_classes']

ClassSpec = Union[Sequence[str], str, dict]
SUBSETS = ('all', 'base', 'novel')


def read_class_file(path) -> List[Tuple[str, str]]:
    """(folder, name) per class of a class-name file (module doc), in label order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Class-name file {path} does not exist: write one line per '
                                'class, "<image folder> <class name>".')
    entries = []
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        folder, _, name = line.partition(' ')
        folder, name = folder.strip(), name.strip()
        entries.append((folder, name or folder.replace('_', ' ')))
    folders = [folder for folder, _ in entries]
    duplicated = sorted({f for f in folders if folders.count(f) > 1})
    if duplicated:
        raise ValueError(f'{path} lists the folders {duplicated} more than once.')
    check_class_names([name for _, name in entries], f'class-name file {path}')
    return entries


def base_novel_split(names: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(base, novel): the first ceil(C / 2) names and the rest."""
    names = list(names)
    half = math.ceil(len(names) / 2)
    return names[:half], names[half:]


def resolve_classes(spec: ClassSpec, what: str = 'classes') -> List[str]:
    """The class names ``spec`` describes: a list of names, the path of a class-name file,
    or ``dict(file=PATH or names=[...], subset='all' | 'base' | 'novel')``."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {'file', 'names', 'subset'})
        if unknown or ('file' in spec) == ('names' in spec):
            raise ValueError(f"{what} as a dict is dict(file=PATH or names=[...], "
                             f"subset='all' | 'base' | 'novel'), got {spec!r}")
        subset = spec.get('subset', 'all')
        if subset not in SUBSETS:
            raise ValueError(f'{what}: subset must be one of {SUBSETS}, got {subset!r}')
        names = resolve_classes(spec.get('file', spec.get('names')), what)
        if subset == 'all':
            return names
        return base_novel_split(names)[SUBSETS.index(subset) - 1]
    if isinstance(spec, (str, Path)):
        return [name for _, name in read_class_file(spec)]
    return check_class_names(list(spec), what)
