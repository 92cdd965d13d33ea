"""Prompt templates: how a class name becomes sentences for a teacher's text tower.

A class embedding is the mean of the normalised embeddings of ``template.format(name)``
over a template set (CLIP's prompt ensembling). Each template holds ``{}`` once.

- ``shapes``: wording of the vlkd-shapes captions ("a red star and a blue circle", "there
  is a star on a striped background"), without colours, counts or positions.
- ``photo``: a general set for natural images (objects photographed at different sizes,
  qualities and viewpoints), for teachers pretrained on web image-text pairs.
"""
import re
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

SHAPES_TEMPLATES = (
    'a {}',
    'a {} shape',
    'a picture of a {}',
    'an image showing a {}',
    'a photo of a {}',
    'there is a {}',
    'we can see a {}',
    'this image contains a {}',
)

PHOTO_TEMPLATES = (
    'a photo of a {}.',
    'a photo of the {}.',
    'a close-up photo of a {}.',
    'a photo of a small {}.',
    'a photo of a large {}.',
    'a cropped photo of a {}.',
    'a blurry photo of a {}.',
    'a bright photo of a {}.',
    'a dark photo of a {}.',
    'a low resolution photo of a {}.',
    'a good photo of a {}.',
    'a picture of a {} in the scene.',
    'there is a {} in the image.',
    'an image containing a {}.',
)

TEMPLATE_SETS = {'shapes': SHAPES_TEMPLATES, 'photo': PHOTO_TEMPLATES}

Templates = Union[str, Sequence[str]]


def resolve_templates(templates: Optional[Templates], default: str = 'photo') -> Tuple[str, ...]:
    """The template strings that ``templates`` names.

    ``templates`` is the name of a set in ``TEMPLATE_SETS``, one template (a string with
    ``{}``), a sequence of templates, or None for the set named ``default``.
    """
    if templates is None:
        templates = default
    if isinstance(templates, str):
        if templates in TEMPLATE_SETS:
            return TEMPLATE_SETS[templates]
        if '{}' not in templates:
            raise ValueError(f'Unknown template set {templates!r}: use one of '
                             f'{sorted(TEMPLATE_SETS)}, or give templates with "{{}}" where '
                             'the class name goes, e.g. "a photo of a {}."')
        templates = [templates]
    templates = tuple(templates)
    if not templates:
        raise ValueError('The template list is empty: give at least one template.')
    for template in templates:
        if not isinstance(template, str) or template.count('{}') != 1:
            raise ValueError(f'Template {template!r} must be a string holding "{{}}" exactly '
                             'once (where the class name goes).')
    return templates


def fill_template(template: str, name: str) -> str:
    """``template`` with ``{}`` replaced by ``name`` (names may hold braces); an article
    "a" right before the name becomes "an" when the name starts with a vowel letter, as in
    the vlkd-shapes captions ("an orange star", "an ellipse")."""
    if name[:1].lower() in 'aeiou':
        template = re.sub(r'(^|\s)a \{\}', r'\1an {}', template)
    return template.replace('{}', name)


def prompt_ensemble(encode_text: Callable[[List[str]], Tensor], names: Sequence[str],
                    templates: Sequence[str], batch_size: int = 1024) -> Tensor:
    """Class embeddings (C, D): for each name, the mean over ``templates`` of the
    L2-normalised embeddings of the filled templates, normalised again.

    ``encode_text`` maps a list of N strings to (N, D) embeddings (any norm).
    """
    texts = [fill_template(template, name) for name in names for template in templates]
    embeddings = [F.normalize(encode_text(texts[i:i + batch_size]), dim=-1)
                  for i in range(0, len(texts), batch_size)]
    per_prompt = torch.cat(embeddings).view(len(names), len(templates), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1)
