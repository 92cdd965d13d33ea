"""The teacher's zero-shot classification of known boxes, run as a detector.

A reference row for open-vocabulary detection tables (ViLD's "CLIP on cropped regions"):
each ground-truth box of the test annotations is embedded by the teacher (its 1x and 1.5x
crops, as for the distillation targets) and classified among the test classes by

    p(c | box) = softmax_c(cos(region embedding, text embedding of c) / T),

and every (box, class) pair is a detection scored ``p(c | box)``; the ``max_per_img``
highest of an image are kept. The boxes are perfect, so AP measures the teacher's region
classification alone: what a student distilled from this teacher could reach with perfect
localisation.
"""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.teachers import build_teacher
from .vocabulary import check_class_names


@MODELS.register_module()
class TeacherBoxClassifier(BaseDetector):
    """Detections = the ground-truth boxes of each test image scored by the teacher.

    Args:
        teacher: the teacher config (e.g. ``dict(type='VLKDTeacher', checkpoint=...)``).
        classes: the test vocabulary, in the dataset's label order.
        templates: prompt templates of the class embeddings (see :class:`TextVocabulary`).
        scales: crop scales, each box's embedding summed over them (ViLD: 1.0 and 1.5).
        temperature: of the softmax over classes (0.01: CLIP's logit scale 100).
        max_per_img: detections kept per image (COCO counts 100).
        data_preprocessor: must leave pixels RGB in 0..255 (no mean / std).
    """

    def __init__(self, teacher: dict, classes: Sequence[str],
                 templates: Union[str, Sequence[str], None] = None,
                 scales: Sequence[float] = (1.0, 1.5), temperature: float = 0.01,
                 max_per_img: int = 100, data_preprocessor: Union[dict, None] = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if temperature <= 0 or max_per_img < 1:
            raise ValueError(f'temperature must be > 0 and max_per_img >= 1, got '
                             f'{temperature} and {max_per_img}')
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False) or \
                not getattr(preprocessor, '_channel_conversion', False):
            raise ValueError('TeacherBoxClassifier crops RGB pixels in 0..255: give it a '
                             "data_preprocessor without mean / std and with bgr_to_rgb=True.")
        self.classes = check_class_names(classes, 'classes')
        self.scales = tuple(scales)
        self.temperature = temperature
        self.max_per_img = max_per_img
        self.teacher = build_teacher(teacher)
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        with torch.no_grad():
            embeddings = self.teacher.encode_class_names(self.classes, templates)
        self.register_buffer('class_embeddings', embeddings.float(), persistent=False)

    def class_probabilities(self, image: Tensor, boxes: Tensor) -> Tensor:
        """(N, C) class probabilities of N boxes (x1 y1 x2 y2, pixels of ``image`` (1, 3, H,
        W) RGB 0..255)."""
        embeddings = self.teacher.encode_regions(image, [boxes], scales=self.scales)[0]
        logits = embeddings.to(self.class_embeddings) @ self.class_embeddings.t()
        return F.softmax(logits / self.temperature, dim=-1)

    @torch.no_grad()
    def predict(self, batch_inputs: Tensor, batch_data_samples, rescale: bool = True):
        """Scores the ``gt_instances`` boxes (original-image pixels, as the test pipelines
        load them after resizing) of every sample; predictions in original pixels."""
        results: List[InstanceData] = []
        for index, sample in enumerate(batch_data_samples):
            gt = sample.get('gt_instances')
            if gt is None:
                raise ValueError('TeacherBoxClassifier scores the ground-truth boxes: the test '
                                 "pipeline must load them (dict(type='LoadAnnotations', "
                                 'with_bbox=True)).')
            original = gt.bboxes.to(batch_inputs.device).float()
            if len(original) == 0:
                results.append(InstanceData(bboxes=original.new_zeros(0, 4),
                                            scores=original.new_zeros(0),
                                            labels=original.new_zeros(0, dtype=torch.long)))
                continue
            boxes = scale_boxes(original, sample.metainfo['scale_factor'])
            probs = self.class_probabilities(batch_inputs[index:index + 1].float(), boxes)
            scores, flat = probs.flatten().topk(min(self.max_per_img, probs.numel()))
            num_classes = probs.shape[1]
            results.append(InstanceData(
                bboxes=(original if rescale else boxes)[flat // num_classes],
                scores=scores, labels=flat % num_classes))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs, batch_data_samples) -> Dict[str, Tensor]:
        raise RuntimeError('TeacherBoxClassifier only evaluates (tools/test.py): it has '
                           'nothing to train.')

    def _forward(self, batch_inputs, batch_data_samples=None) -> Tuple[Tensor]:
        return (batch_inputs,)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        return (batch_inputs,)
