"""Token layouts of learnable text prompts (CoOp, CoCoOp, MaPLe).

A prompt for class ``name`` is the template filled with the name (as the teacher's
templates are: :func:`vlkd.teachers.templates.fill_template`) with M learnable context
vectors [V] placed around it, between the start and end tokens::

    end      [SOS] [V]1..[V]M  prefix NAME  suffix [EOS]
    front    [SOS] prefix NAME  [V]1..[V]M  suffix [EOS]
    middle   [SOS] [V]1..[V]M/2  prefix NAME  [V]M/2+1..[V]M  suffix [EOS]

where prefix / suffix are the template's text before / after ``{}``. CoOp's prompts are the
template ``'{}.'``; with M = 0 every layout is the plain template sentence, token for token.
A layout holds the token ids (the id of the word "X" in the context slots, as in CoOp: an
ordinary token, so that end-of-text pooling finds the real end) and the slot positions;
the context vectors replace the token embeddings there.
"""
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import Tensor

from vlkd.teachers.templates import fill_template, resolve_templates

from .backbones import PromptBackbone

CLASS_POSITIONS = ('end', 'middle', 'front')


@dataclass
class PromptLayout:
    """``token_ids`` (C, L) int64, context slots holding the id of "X"; ``context_index``
    (C, M) int64, the positions of the M context vectors in each row."""
    token_ids: Tensor
    context_index: Tensor

    def to(self, device) -> 'PromptLayout':
        return PromptLayout(self.token_ids.to(device), self.context_index.to(device))


def split_template(template: str, name: str):
    """(prefix, suffix) around ``name`` in ``fill_template(template, name)``."""
    (template,) = resolve_templates([template])  # checks it holds '{}' once
    suffix = template.split('{}', 1)[1]
    filled = fill_template(template, name)
    return filled[:len(filled) - len(name) - len(suffix)], suffix


def layout_prompts(backbone: PromptBackbone, names: Sequence[str], num_context: int,
                   template: str = '{}.', class_position: str = 'end') -> PromptLayout:
    """The :class:`PromptLayout` of ``names`` (module doc)."""
    if class_position not in CLASS_POSITIONS:
        raise ValueError(f'class_position must be one of {CLASS_POSITIONS}, got '
                         f'{class_position!r}')
    if num_context < 0:
        raise ValueError(f'The number of context vectors must be >= 0, got {num_context}.')
    before = {'end': num_context, 'front': 0, 'middle': num_context // 2}[class_position]
    after = num_context - before
    slot = backbone.word_ids('X')[0]
    rows: List[List[int]] = []
    slots: List[List[int]] = []
    for name in names:
        prefix, suffix = split_template(template, name)
        words = backbone.word_ids(prefix) + backbone.word_ids(name)
        row = [backbone.bos_id] + [slot] * before + words + [slot] * after + \
            backbone.word_ids(suffix) + [backbone.eos_id]
        if len(row) > backbone.context_length:
            raise ValueError(f'The prompt of class {name!r} is {len(row)} tokens with '
                             f'{num_context} context vectors, but the text tower takes '
                             f'{backbone.context_length}: use fewer context vectors or a '
                             'shorter name.')
        rows.append(row + [backbone.pad_id] * (backbone.context_length - len(row)))
        start_after = 1 + before + len(words)
        slots.append(list(range(1, 1 + before)) + list(range(start_after, start_after + after)))
    return PromptLayout(torch.tensor(rows, dtype=torch.long),
                        torch.tensor(slots, dtype=torch.long).view(len(names), num_context))


def phrase_embeddings(backbone: PromptBackbone, phrase: str) -> Tensor:
    """Token embeddings (M, W) of ``phrase`` (no start / end tokens): context vectors that
    make the prompt read ``phrase`` before training (CoOp's initialisation)."""
    ids = backbone.word_ids(phrase)
    if not ids:
        raise ValueError(f'The context initialisation phrase {phrase!r} has no tokens.')
    device = next(iter(backbone.teacher.parameters())).device
    with torch.no_grad():
        return backbone.embed_tokens(torch.tensor([ids], device=device))[0].float().cpu()
