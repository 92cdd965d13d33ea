"""ViLD's ensembles: text-head scores combined with image-embedding scores of each box.

ViLD (Gu et al., 2022, Sec. 3.4 "Model ensembling") combines, for every detection and class
``i``, the probability ``p_text`` of the ViLD-text head with a probability ``p_image`` from
an image embedding of the same box, by a weighted geometric mean whose weight depends on
whether the class was seen with boxes in training::

    p_i = p_text,i ** lam       * p_image,i ** (1 - lam)    i a base class
    p_i = p_text,i ** (1 - lam) * p_image,i ** lam          i a novel class

with ``lam = 2/3``: the text head, trained on base boxes, is trusted more on base classes,
the image embedding more on novel ones. ``p_image`` is a softmax over the classes of the
cosine similarities between the image embedding and the class text embeddings, divided by a
temperature. The image embedding comes from

- ``'teacher'``: the teacher itself, embedding crops of each box (1x and 1.5x, as for the
  distillation targets) at test time (paper: "ViLD-text + CLIP"; as slow as cropping);
- ``'branch'``: a second head of the detector trained only by ViLD-image distillation
  (paper: ViLD-ensemble; :class:`ViLDEnsembleBBoxHead`), no teacher at test time.

Base classes are the head's ``train_classes``; any other class of the test vocabulary
(including names given at inference) counts as novel. The background probability of a box
is the text head's; the ensemble scores are used as they are (not renormalised) by NMS.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors import FasterRCNN
from mmdet.models.layers import multiclass_nms
from mmdet.models.utils import empty_instances
from mmdet.structures.bbox import bbox2roi, scale_boxes
from mmengine.structures import InstanceData
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.teachers import build_teacher
from .vild_bbox_head import ViLDBBoxHead
from .vild_roi_head import ViLDRoIHead


def vild_ensemble_scores(text_probs: Tensor, image_probs: Tensor, is_base: Tensor,
                         base_weight: float = 2 / 3) -> Tensor:
    """Weighted geometric mean of two (N, C) class probabilities.

    Args:
        text_probs, image_probs: (N, C) probabilities of the same N boxes and C classes.
        is_base: (C,) bool, True for classes seen with boxes in training.
        base_weight: ``lam``, the exponent of ``text_probs`` on base classes; novel classes
            use ``1 - lam``. 2/3 in ViLD.
    Returns:
        (N, C) ensemble scores.
    """
    if not 0.0 <= base_weight <= 1.0:
        raise ValueError(f'base_weight must be in [0, 1], got {base_weight}')
    if text_probs.shape != image_probs.shape or is_base.shape != text_probs.shape[-1:]:
        raise ValueError(f'shape mismatch: text {tuple(text_probs.shape)}, image '
                         f'{tuple(image_probs.shape)}, is_base {tuple(is_base.shape)}')
    text_weight = text_probs.new_full(is_base.shape, 1.0 - base_weight)
    text_weight[is_base.to(device=text_probs.device, dtype=torch.bool)] = base_weight
    return text_probs.pow(text_weight) * image_probs.pow(1.0 - text_weight)


@MODELS.register_module()
class ViLDEnsembleBBoxHead(ViLDBBoxHead):
    """ViLD-ensemble's two heads: a ViLD-text head plus a ViLD-image branch.

    The text branch (the shared convs / FCs, projection, background embedding, box
    regression of :class:`ViLDBBoxHead`) is trained by the classification and box losses;
    a second branch of the same architecture (its own convs / FCs and projection) gives the
    region embeddings that :class:`ViLDRoIHead` distils the teacher into. Arguments as for
    :class:`ViLDBBoxHead`; the ensemble itself is done by :class:`ViLDEnsembleRoIHead`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.image_convs, self.image_fcs, image_dim = self._add_conv_fc_branch(
            self.num_shared_convs, self.num_shared_fcs, self.in_channels, True)
        self.image_projection = torch.nn.Linear(image_dim, self.embed_dim)

    def region_embeddings(self, x: Tensor) -> Tensor:
        """RoI features (N, C, h, w) -> L2-normalised image-branch embeddings (N, D)."""
        for conv in self.image_convs:
            x = conv(x)
        if self.image_fcs:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.image_fcs:
                x = self.relu(fc(x))
        return F.normalize(self.image_projection(x), dim=-1)


@MODELS.register_module()
class ViLDEnsembleRoIHead(ViLDRoIHead):
    """:class:`ViLDRoIHead` whose test-time scores are ViLD's ensemble (module doc).

    Args:
        ensemble: dict with
            - ``image_scores``: ``'branch'`` (needs :class:`ViLDEnsembleBBoxHead`) or
              ``'teacher'`` (needs the detector :class:`ViLDFasterRCNN`, which hands the
              input pixels to this head);
            - ``base_weight``: ``lam`` (default 2/3);
            - ``temperature``: of the image-score softmax (default: the box head's);
            - ``teacher``: teacher config for ``'teacher'`` (default: the vocabulary's
              teacher); it must be the teacher of the class embeddings;
            - ``scales``: crop scales for ``'teacher'`` (default (1.0, 1.5)).
        **kwargs: as for :class:`ViLDRoIHead` (training is unchanged).
    """

    def __init__(self, *args, ensemble: dict, **kwargs):
        super().__init__(*args, **kwargs)
        known = {'image_scores', 'base_weight', 'temperature', 'teacher', 'scales'}
        if set(ensemble) - known:
            raise KeyError(f'Unknown ensemble keys {sorted(set(ensemble) - known)}; valid '
                           f'keys: {sorted(known)}.')
        self.ensemble = dict(image_scores=None, base_weight=2 / 3, temperature=None,
                             teacher=None, scales=(1.0, 1.5))
        self.ensemble.update(ensemble)
        image_scores = self.ensemble['image_scores']
        if image_scores not in ('branch', 'teacher'):
            raise ValueError("ensemble.image_scores must be 'branch' (a ViLD-image branch, "
                             "ViLDEnsembleBBoxHead) or 'teacher' (crops embedded by the "
                             f'teacher), got {image_scores!r}.')
        if image_scores == 'branch' and not isinstance(self.bbox_head, ViLDEnsembleBBoxHead):
            raise TypeError("ensemble.image_scores='branch' needs bbox_head of type "
                            f'ViLDEnsembleBBoxHead, got {type(self.bbox_head).__name__}.')
        if not 0.0 <= self.ensemble['base_weight'] <= 1.0:
            raise ValueError(f"ensemble.base_weight must be in [0, 1], got "
                             f"{self.ensemble['base_weight']}")
        if image_scores == 'teacher' and self.ensemble['teacher'] is None:
            self.ensemble['teacher'] = self.bbox_head.vocabulary.teacher_cfg
            if self.ensemble['teacher'] is None:
                raise ValueError("ensemble.image_scores='teacher' needs ensemble.teacher: the "
                                 'vocabulary comes from an embedding file, not a teacher.')
        self._teacher = []  # built on first use, kept out of the module tree (and checkpoints)

    @property
    def needs_images(self) -> bool:
        """Whether :meth:`predict` needs the input pixels (``images=``)."""
        return self.ensemble['image_scores'] == 'teacher'

    @property
    def teacher(self):
        if not self._teacher:
            teacher = build_teacher(self.ensemble['teacher'])
            if teacher.fingerprint != self.bbox_head.vocabulary.fingerprint:
                raise ValueError(
                    'The ensemble teacher is not the teacher of the class embeddings '
                    f'({teacher.fingerprint[:12]} vs {self.bbox_head.vocabulary.fingerprint[:12]}'
                    '): its image embeddings live in another space.')
            self._teacher.append(teacher)
        return self._teacher[0]

    def predict(self, x: Tuple[Tensor], rpn_results_list, batch_data_samples,
                rescale: bool = False, images: Optional[Tensor] = None):
        """As :meth:`StandardRoIHead.predict`; ``images``: input pixels (B, 3, H, W), RGB
        0..255, needed for ``image_scores='teacher'``."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, self.test_cfg,
                                         rescale=rescale and not self.with_mask, images=images)
        if self.with_mask:
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale)
        return results_list

    def predict_bbox(self, x: Tuple[Tensor], batch_img_metas: List[dict], rpn_results_list,
                     rcnn_test_cfg, rescale: bool = False, images: Optional[Tensor] = None):
        """Boxes of each image scored by the ensemble, then per-class NMS."""
        if rcnn_test_cfg is None:
            raise ValueError('ViLDEnsembleRoIHead needs test_cfg.rcnn (score_thr, nms, '
                             'max_per_img).')
        if self.needs_images and images is None:
            raise ValueError("ensemble.image_scores='teacher' crops the detections from the "
                             "input images: use the detector type 'vlkd.ViLDFasterRCNN'.")
        head = self.bbox_head
        proposals = [result.bboxes for result in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return empty_instances(batch_img_metas, rois.device, task_type='bbox',
                                   num_classes=head.num_classes)
        bbox_results = self._bbox_forward(x, rois)
        counts = [len(p) for p in proposals]
        text_probs = F.softmax(bbox_results['cls_score'], dim=-1).split(counts)
        deltas = bbox_results['bbox_pred'].split(counts)
        feats = bbox_results['bbox_feats'].split(counts)
        train_classes = set(head.train_classes)
        is_base = torch.tensor([c in train_classes for c in head.test_classes],
                               device=rois.device)
        results = []
        for index, (meta, img_rois) in enumerate(zip(batch_img_metas, rois.split(counts))):
            if len(img_rois) == 0:
                results.extend(empty_instances([meta], rois.device, task_type='bbox',
                                               num_classes=head.num_classes))
                continue
            boxes = head.bbox_coder.decode(img_rois[:, 1:], deltas[index],
                                           max_shape=meta['img_shape'])
            image = None if images is None else images[index:index + 1]
            image_probs = self.image_probabilities(feats[index], boxes, image)
            scores = vild_ensemble_scores(text_probs[index][:, :-1], image_probs, is_base,
                                          self.ensemble['base_weight'])
            scores = torch.cat([scores, text_probs[index][:, -1:]], dim=1)
            if rescale:
                boxes = scale_boxes(boxes, [1 / s for s in meta['scale_factor']])
            dets, labels = multiclass_nms(boxes, scores, rcnn_test_cfg.score_thr,
                                          rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img)
            results.append(InstanceData(bboxes=dets[:, :-1], scores=dets[:, -1],
                                        labels=labels))
        return results

    def image_probabilities(self, roi_feats: Tensor, boxes: Tensor,
                            image: Optional[Tensor]) -> Tensor:
        """Class probabilities (N, C) of N boxes from their image embeddings.

        ``roi_feats`` (N, C, h, w) feed the ViLD-image branch; ``boxes`` (N, 4) in pixels
        of ``image`` (1, 3, H, W) are cropped for the teacher.
        """
        head = self.bbox_head
        if self.ensemble['image_scores'] == 'teacher':
            teacher = self.teacher.to(boxes.device)
            embeddings = teacher.encode_regions(image, [boxes],
                                                scales=tuple(self.ensemble['scales']))[0]
        else:
            embeddings = head.region_embeddings(roi_feats)
        temperature = self.ensemble['temperature'] or head.temperature
        logits = embeddings.to(head.class_embeddings) @ head.class_embeddings.t()
        return F.softmax(logits / temperature, dim=-1)


@MODELS.register_module()
class ViLDFasterRCNN(FasterRCNN):
    """mmdet's FasterRCNN that, at test time, hands the input pixels (RGB, 0..255) to an
    RoI head that asks for them (``roi_head.needs_images``), e.g. ViLD's ensemble with the
    teacher. Training and other RoI heads are exactly FasterRCNN's."""

    def predict(self, batch_inputs: Tensor, batch_data_samples, rescale: bool = True):
        if not getattr(self.roi_head, 'needs_images', False):
            return super().predict(batch_inputs, batch_data_samples, rescale)
        x = self.extract_feat(batch_inputs)
        if batch_data_samples[0].get('proposals', None) is None:
            rpn_results_list = self.rpn_head.predict(x, batch_data_samples, rescale=False)
        else:
            rpn_results_list = [sample.proposals for sample in batch_data_samples]
        results_list = self.roi_head.predict(x, rpn_results_list, batch_data_samples,
                                             rescale=rescale,
                                             images=self.input_pixels(batch_inputs))
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def input_pixels(self, batch_inputs: Tensor) -> Tensor:
        """Undo the data preprocessor's normalisation: RGB 0..255 (B, 3, H, W)."""
        preprocessor = self.data_preprocessor
        pixels = batch_inputs
        if getattr(preprocessor, '_enable_normalize', False):
            pixels = pixels * preprocessor.std + preprocessor.mean
        if not getattr(preprocessor, '_channel_conversion', False):
            pixels = pixels.flip(1)  # mmcv loads BGR; without conversion the inputs are BGR
        return pixels
