"""Self-training (ZS3Net / ZS5Net, MaskCLIP+): a trained student relabels its training set.

Pixels that carry a ground-truth label keep it; a pixel without one (an unseen class in
the zero-shot setting, or void) takes the student's prediction if it is one of the
``pseudo_classes`` (by default the classes the training set ignores) with a probability of
at least ``score_thr``. The new masks are written in the dataset's own mask format (its
label table inverted), so a second training reads them with the same dataset type, its
``ignore_classes`` emptied and ``seg_map_path`` pointing at them
(``configs/seg/*_self_training_shapes.py``).
"""
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from PIL import Image
from torch import Tensor

from vlkd.datasets.seg_base import OpenVocabSegDataset
from vlkd.datasets.seg_loading import INVALID


def relabel(gt: Tensor, probs: Tensor, pseudo_classes: Sequence[int], score_thr: float,
            ignore_index: int = 255) -> Tensor:
    """New labels (H, W): ``gt`` (H, W) where labelled, else the argmax of ``probs``
    (C, H, W) where it is a pseudo class with probability >= ``score_thr``."""
    if gt.shape != probs.shape[1:]:
        raise ValueError(f'labels {tuple(gt.shape)} and probabilities {tuple(probs.shape)} '
                         'must cover the same pixels.')
    score, label = probs.max(dim=0)
    allowed = torch.zeros(probs.shape[0], dtype=torch.bool, device=probs.device)
    allowed[list(pseudo_classes)] = True
    take = (gt == ignore_index) & allowed[label] & (score >= score_thr)
    return torch.where(take, label.to(gt.dtype), gt)


def stored_values(table: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """The inverse of a dataset's label table: (256,) pixel value to store for each class
    index (and ``ignore_index`` for unlabelled pixels)."""
    inverse = np.full(256, -1, dtype=np.int16)
    for value in range(255, -1, -1):  # the smallest value wins; ignore keeps its own
        if table[value] != INVALID:
            inverse[table[value]] = value
    inverse[ignore_index] = ignore_index if table[ignore_index] == ignore_index \
        else np.flatnonzero(table == ignore_index)[0]
    return inverse


@torch.no_grad()
def relabel_dataset(model, dataset: OpenVocabSegDataset, out_dir, pseudo_classes: Sequence[str],
                    score_thr: float) -> int:
    """Relabel every sample of ``dataset`` (its pipeline must load the image and the mask
    without augmentation) with ``model`` (test vocabulary = the dataset's classes); write
    the masks to ``out_dir`` under their file names. Returns the number of pixels that got
    a pseudo label."""
    classes = list(dataset.metainfo['classes'])
    model_classes = list(getattr(model, 'decode_head', model).test_classes
                         if hasattr(model, 'decode_head') else model.classes)
    if model_classes != classes:
        raise ValueError(f'The model segments {model_classes[:5]}..., the dataset has classes '
                         f'{classes[:5]}...: set the model\'s test classes to the dataset\'s.')
    unknown = [name for name in pseudo_classes if name not in classes]
    if unknown or not pseudo_classes:
        raise ValueError(f'pseudo_classes must be classes of the dataset, got {unknown or []}.')
    indices = [classes.index(name) for name in pseudo_classes]
    inverse = stored_values(dataset.label_table(apply_ignore=False), dataset.ignore_index)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    added = 0
    for i in range(len(dataset)):
        data = dataset[i]
        sample = model.test_step(dict(inputs=[data['inputs']],
                                      data_samples=[data['data_samples']]))[0]
        gt = data['data_samples'].gt_sem_seg.data[0].to(sample.seg_logits.data.device)
        labels = relabel(gt, sample.seg_logits.data.softmax(dim=0), indices, score_thr,
                         dataset.ignore_index)
        added += int((labels != gt).sum())
        values = inverse[labels.cpu().numpy()].astype(np.uint8)
        Image.fromarray(values).save(out_dir / Path(data['data_samples'].seg_map_path).name)
        if (i + 1) % 200 == 0:
            print_log(f'relabelled {i + 1} / {len(dataset)} masks', logger='current')
    return added
