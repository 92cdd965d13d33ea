"""Losses of region-based knowledge distillation (Rasheed et al., NeurIPS 2022).

"Bridging the Gap between Object and Image-level Representations for Open-Vocabulary
Detection" distils a CLIP teacher into a two-stage detector with three terms besides the
usual box losses:

- point-wise matching: the L1 distance between the student's embedding of a class-agnostic
  proposal and the teacher's embedding of its crop (ViLD's loss; :class:`ViLDRoIHead`);
- inter-embedding relationship matching (IRM), :func:`inter_embedding_relation_loss`: the
  student's regions should relate to each other as the teacher's do. With ``S`` (N, D) the
  student's and ``T`` (N, D) the teacher's embeddings of the same N regions,
  ``G(X) = rownorm(X X^T)`` (each row of the Gram matrix scaled to unit L2 norm) and

      L_irm = ||G(S) - G(T)||_F^2 / N,

  summed over all entries and divided by the number of regions. The authors' code sums
  without the division; dividing keeps the loss weight independent of the batch size (the
  two differ by a constant factor for a fixed N);
- pseudo-label image-level supervision, :func:`image_label_loss`: for each class named by an
  image's weak label, the student's classification of the proposal the teacher scores
  highest for that class is trained to that class (see :mod:`.rkd_pseudo_labels`).
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def relation_matrix(embeddings: Tensor) -> Tensor:
    """(N, D) embeddings -> (N, N) Gram matrix ``X X^T`` with each row L2-normalised."""
    return F.normalize(embeddings @ embeddings.t(), dim=1)


def inter_embedding_relation_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """IRM loss (scalar): ``||G(student) - G(teacher)||_F^2 / N`` for (N, D) embeddings of
    the same N regions (any norm; the teacher side receives no gradient)."""
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError('IRM needs student and teacher embeddings of the same shape (N, D); '
                         f'got {tuple(student.shape)} and {tuple(teacher.shape)}.')
    if len(student) == 0:
        return student.sum() * 0
    difference = relation_matrix(student) - relation_matrix(teacher.detach())
    return difference.pow(2).sum() / len(student)


def image_label_loss(cls_score: Tensor, labels: Tensor, image_index: Tensor) -> Tensor:
    """Pseudo-label loss (scalar): cross-entropy of each pseudo box's classification
    ``cls_score`` (P, C+1) against its class ``labels`` (P,), averaged over the pseudo boxes
    of each image (``image_index`` (P,)) and then over the images that have any, as the
    paper averages over an image's labels and then over the batch."""
    if cls_score.dim() != 2 or labels.shape != (len(cls_score),) or \
            image_index.shape != labels.shape:
        raise ValueError('image_label_loss needs cls_score (P, C+1), labels (P,) and '
                         f'image_index (P,); got {tuple(cls_score.shape)}, '
                         f'{tuple(labels.shape)}, {tuple(image_index.shape)}.')
    if len(labels) == 0:
        return cls_score.sum() * 0
    per_box = F.cross_entropy(cls_score, labels, reduction='none')
    images, inverse = torch.unique(image_index, return_inverse=True)
    per_image = per_box.new_zeros(len(images)).index_add_(0, inverse, per_box)
    counts = per_box.new_zeros(len(images)).index_add_(0, inverse, torch.ones_like(per_box))
    return (per_image / counts).mean()
