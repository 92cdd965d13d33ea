"""English helpers for the captions of the generated datasets (vlkd-shapes, its videos)."""
from typing import Sequence

__all__ = ['count_word', 'plural', 'with_article', 'join_and']

_COUNT_WORDS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
                'ten')


def count_word(n: int) -> str:
    """'no', 'one', ... 'ten', then digits."""
    return _COUNT_WORDS[n] if n < len(_COUNT_WORDS) else str(n)


def plural(name: str) -> str:
    """'star' -> 'stars', 'cross' -> 'crosses'."""
    return name + ('es' if name.endswith('s') else 's')


def with_article(phrase: str) -> str:
    """'a red star', 'an orange circle'."""
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def join_and(phrases: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(phrases) == 1:
        return phrases[0]
    return ', '.join(phrases[:-1]) + ' and ' + phrases[-1]
