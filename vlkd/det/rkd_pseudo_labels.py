"""Pseudo boxes for image-level supervision: weak class labels grounded by the teacher.

Region-based KD (Rasheed et al., 2022) trains the detector's classifier on classes that
have no boxes (the novel ones) from image-level labels. Each label is turned into a pseudo
box: among the class-agnostic proposals of the image, the one the vision-language teacher
finds most similar to the class name. Here:

- the weak labels of an image are the classes its captions name (:class:`CaptionClassLabels`:
  a class counts when its name, or its plural, appears as a whole word in any caption of
  the image; captions are free text, so this is the image-level supervision the paper gets
  from ImageNet-21k labels, and the names of novel classes come in this way);
- the teacher's score of proposal ``r`` for class ``c`` is the cosine similarity between
  its cached crop embedding (the region cache of ViLD, :mod:`.region_cache`) and the class
  text embedding; the pseudo box of ``c`` is the arg-max over the image's proposals
  (:func:`select_pseudo_boxes`). The teacher's embeddings are computed once for the cache,
  so the pseudo boxes cost one (K, C) product per image.
"""
import re
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from vlkd.datasets.caption_words import plural
from vlkd.datasets.image_text import load_coco_captions
from .vocabulary import check_class_names


def caption_class_labels(captions: Sequence[str], classes: Sequence[str]) -> List[int]:
    """Indices (ascending) of the ``classes`` named in any of ``captions``: the name or its
    plural as whole words, case-insensitively ('two stars' names 'star'; 'starfish' does
    not)."""
    text = '\n'.join(captions).lower()
    labels = []
    for index, name in enumerate(classes):
        forms = '|'.join(re.escape(form) for form in (name.lower(), plural(name.lower())))
        if re.search(rf'(?<!\w)(?:{forms})(?!\w)', text):
            labels.append(index)
    return labels


class CaptionClassLabels:
    """Image id -> the class indices its captions name, read from a COCO captions file.

    Args:
        caption_file: a COCO-format captions file (``annotations/captions_train.json``).
        classes: the class names labels index into.
    """

    def __init__(self, caption_file: str, classes: Sequence[str]):
        self.caption_file = caption_file
        self.classes = check_class_names(classes, 'image-label classes')
        self.labels: Dict[int, List[int]] = {
            int(image['img_id']): caption_class_labels(image['captions'], self.classes)
            for image in load_coco_captions(caption_file)}

    def __getitem__(self, img_id: int) -> List[int]:
        if int(img_id) not in self.labels:
            raise KeyError(f'Image {img_id} has no caption in {self.caption_file}: image-level '
                           'labels need the captions file of the training split.')
        return self.labels[int(img_id)]


def select_pseudo_boxes(region_embeddings: Tensor, class_embeddings: Tensor,
                        labels: Sequence[int]) -> Tensor:
    """For each label, the index of the region the teacher scores highest for that class.

    Args:
        region_embeddings: (K, D) teacher embeddings of an image's proposals.
        class_embeddings: (C, D) text embeddings the labels index into.
        labels: class indices (L of them).

    Returns:
        (L,) long tensor of region indices (empty if there are no regions or labels).
    """
    if region_embeddings.dim() != 2 or class_embeddings.dim() != 2 or \
            region_embeddings.shape[1] != class_embeddings.shape[1]:
        raise ValueError('select_pseudo_boxes needs region (K, D) and class (C, D) embeddings '
                         f'of one dimension; got {tuple(region_embeddings.shape)} and '
                         f'{tuple(class_embeddings.shape)}.')
    labels = torch.as_tensor(list(labels), dtype=torch.long, device=class_embeddings.device)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_embeddings)):
        raise IndexError(f'labels {labels.tolist()} out of range for '
                         f'{len(class_embeddings)} classes')
    if len(region_embeddings) == 0 or len(labels) == 0:
        return labels.new_zeros(0)
    scores = region_embeddings @ class_embeddings[labels].t()  # (K, L)
    return scores.argmax(dim=0)
