"""Region-based KD's losses and pseudo labels, each against a computation written here from
the paper's definition (numpy loops), never against the functions themselves."""
import json

import numpy as np
import pytest
import torch

from vlkd.det.rkd_losses import image_label_loss, inter_embedding_relation_loss
from vlkd.det.rkd_pseudo_labels import (CaptionClassLabels, caption_class_labels,
                                        select_pseudo_boxes)

SHAPES = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
          'heart', 'crescent', 'ellipse', 'arrow']


def _irm_numpy(student: np.ndarray, teacher: np.ndarray) -> float:
    """||G(S) - G(T)||_F^2 / N, G = Gram matrix with unit-norm rows, by loops."""
    n = len(student)

    def gram(x):
        g = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                g[i, j] = sum(x[i, k] * x[j, k] for k in range(x.shape[1]))
            g[i] /= np.sqrt(sum(v * v for v in g[i]))
        return g

    gs, gt = gram(student), gram(teacher)
    return sum((gs[i, j] - gt[i, j]) ** 2 for i in range(n) for j in range(n)) / n


def test_irm_loss_matches_the_formula_and_trains_the_student_only():
    rng = np.random.default_rng(0)
    student_np, teacher_np = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    student = torch.tensor(student_np, requires_grad=True)
    teacher = torch.tensor(teacher_np, requires_grad=True)
    loss = inter_embedding_relation_loss(student, teacher)
    np.testing.assert_allclose(loss.item(), _irm_numpy(student_np, teacher_np), rtol=1e-10)
    loss.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
    # the same relations give zero loss, whatever the scale of each side
    assert inter_embedding_relation_loss(3 * teacher.detach(), teacher).item() < 1e-12
    assert inter_embedding_relation_loss(torch.zeros(0, 5), torch.zeros(0, 5)).item() == 0
    with pytest.raises(ValueError, match='same shape'):
        inter_embedding_relation_loss(torch.zeros(4, 5), torch.zeros(4, 6))


def test_image_label_loss_averages_per_image_then_over_images():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(6, 4)) * 3
    labels = [0, 2, 1, 1, 3, 0]
    images = [0, 0, 2, 2, 2, 5]
    per_image = {}
    for row, label, image in zip(scores, labels, images):
        log_softmax = row[label] - np.log(sum(np.exp(v) for v in row))
        per_image.setdefault(image, []).append(-log_softmax)
    expected = np.mean([np.mean(v) for v in per_image.values()])
    loss = image_label_loss(torch.tensor(scores), torch.tensor(labels), torch.tensor(images))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-10)
    empty = torch.zeros(0, 4, requires_grad=True)
    assert image_label_loss(empty, torch.zeros(0, dtype=torch.long),
                            torch.zeros(0, dtype=torch.long)).item() == 0
    with pytest.raises(ValueError, match=r'labels \(P,\)'):
        image_label_loss(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long),
                         torch.zeros(3, dtype=torch.long))


def test_caption_class_labels_match_whole_words_and_plurals():
    captions = ['Two STARS and a red heart', 'an orange cross beside crosses',
                'a starfish on a hexagonal tile']
    assert caption_class_labels(captions, SHAPES) == [
        SHAPES.index('star'), SHAPES.index('cross'), SHAPES.index('heart')]
    assert caption_class_labels(['nothing here'], SHAPES) == []


def test_caption_labels_of_the_shapes_data_are_the_annotated_classes(shapes_root):
    """The generated captions name every object: the labels read from them equal the
    classes of the image's boxes in instances_train.json (novel classes included)."""
    labels = CaptionClassLabels(str(shapes_root / 'annotations/captions_train.json'), SHAPES)
    instances = json.loads((shapes_root / 'annotations/instances_train.json').read_text())
    names = {c['id']: c['name'] for c in instances['categories']}
    for image in instances['images']:
        annotated = {names[a['category_id']] for a in instances['annotations']
                     if a['image_id'] == image['id']}
        assert [SHAPES[i] for i in labels[image['id']]] == \
            [name for name in SHAPES if name in annotated]
    with pytest.raises(KeyError, match='no caption'):
        labels[10 ** 6]


def test_pseudo_box_is_the_region_the_teacher_scores_highest_for_the_class():
    rng = np.random.default_rng(2)
    regions, classes = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    labels = [3, 0, 4]
    expected = []
    for c in labels:
        scores = [sum(regions[r, k] * classes[c, k] for k in range(4)) for r in range(7)]
        expected.append(int(np.argmax(scores)))
    chosen = select_pseudo_boxes(torch.tensor(regions), torch.tensor(classes), labels)
    assert chosen.tolist() == expected
    assert select_pseudo_boxes(torch.zeros(0, 4), torch.tensor(classes), labels).numel() == 0
    with pytest.raises(IndexError, match='out of range'):
        select_pseudo_boxes(torch.tensor(regions), torch.tensor(classes), [5])
    with pytest.raises(ValueError, match='one dimension'):
        select_pseudo_boxes(torch.zeros(3, 4), torch.zeros(5, 3), [0])
