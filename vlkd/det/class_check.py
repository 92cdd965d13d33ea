"""Check, before a run, that the class names of the data and of the detector agree.

Two mistakes make an mmdet detector silently wrong rather than fail:

- an annotation file without a category for one of the dataset's classes: mmdet's
  ``CocoDataset`` skips the name and numbers the remaining classes consecutively, so every
  later label names the wrong class;
- a detector whose class list is not the dataset's (an open-vocabulary head's
  ``train_classes`` / ``test_classes``, a closed head's ``num_classes``): label ``i`` of the
  model is not class ``i`` of the data and the metric.

:class:`CheckClassNamesHook` raises a clear error for both, before training, validation and
testing. Recovery for missing categories: add the missing entries to the file's
``categories`` (a category without annotations is fine), or remove the class from the
dataset's ``metainfo.classes`` and from the detector's class lists.
"""
import json
from pathlib import Path
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from vlkd.registry import HOOKS


class ClassNamesMismatch(ValueError):
    """The dataset's classes, its annotation categories and the detector disagree."""


def dataset_classes(dataset) -> Optional[List[str]]:
    """The class names of a (possibly wrapped) mmdet dataset, or None if it has none."""
    while not hasattr(dataset, 'metainfo') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    classes = getattr(dataset, 'metainfo', {}).get('classes')
    return None if classes is None else list(classes)


def check_annotation_categories(dataset) -> None:
    """Raise :class:`ClassNamesMismatch` if the dataset's annotation file lacks a category
    for one of its classes (mmdet keeps ``cat_ids`` of the classes it found)."""
    while not hasattr(dataset, 'cat_ids') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    if not hasattr(dataset, 'cat_ids'):
        return  # not a COCO-style dataset
    dataset.full_init()
    classes = dataset_classes(dataset)
    if len(dataset.cat_ids) == len(classes):
        return
    categories = json.loads(Path(dataset.ann_file).read_text())['categories']
    names = {category['name'] for category in categories}
    missing = [name for name in classes if name not in names]
    raise ClassNamesMismatch(
        f'The annotation file {dataset.ann_file} has no category for {missing} of the '
        f"dataset's {len(classes)} classes, so mmdet would number the remaining classes "
        'differently and every label after the first missing class would be wrong. Add '
        "the missing entries to the file's 'categories' (a category without annotations "
        "is fine), or remove these classes from the dataset's metainfo.classes and from the "
        "detector's class lists.")


def check_model_classes(model, classes: List[str], split: str) -> None:
    """Raise :class:`ClassNamesMismatch` if the detector's classes for ``split`` ('train'
    or 'test') are not the dataset's ``classes``, in order."""
    if is_model_wrapper(model):
        model = model.module
    head = getattr(getattr(model, 'roi_head', None), 'bbox_head', None)
    if head is None:
        head = getattr(model, 'bbox_head', None)
    if head is None:
        return
    model_classes = getattr(head, f'{split}_classes', None)
    if model_classes is not None:
        if list(model_classes) != classes:
            raise ClassNamesMismatch(
                f"The detector's {split}_classes {list(model_classes)} are not the {split} "
                f"dataset's classes {classes} (same names in the same order): label i of the "
                'model must be class i of the data. Set model.roi_head.bbox_head.'
                f'{split}_classes to the dataset classes.')
    elif getattr(head, 'num_classes', len(classes)) != len(classes):
        raise ClassNamesMismatch(
            f'The detector predicts {head.num_classes} classes, the {split} dataset has '
            f'{len(classes)} ({classes}); set num_classes to match.')


@HOOKS.register_module()
class CheckClassNamesHook(Hook):
    """Before training, validation and testing: the annotation file has a category for
    every dataset class, and the detector's classes are the dataset's (module doc)."""

    priority = 'VERY_HIGH'

    def _check(self, runner, loader_name: str, split: str) -> None:
        dataset = getattr(runner, loader_name).dataset
        classes = dataset_classes(dataset)
        if classes is None:
            return
        check_annotation_categories(dataset)
        check_model_classes(runner.model, classes, split)

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader', 'train')

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader', 'test')

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader', 'test')
