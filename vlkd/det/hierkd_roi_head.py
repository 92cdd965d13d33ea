"""HierKD on vlkd's two-stage ViLD student: instance-level plus global-level distillation.

Instance level is ViLD's region distillation (:class:`~vlkd.det.vild_roi_head.ViLDRoIHead`:
L1 between student region embeddings and the teacher's cached embeddings of proposals);
global level is :class:`~vlkd.det.hierkd_global.GlobalCaptionDistillation` on the feature
maps the RoI head receives, with one caption per training image
(``data_sample.metainfo['caption']``, set by :class:`~vlkd.det.hierkd_captions.AttachCaption`).
The paper builds HierKD on a one-stage ATSS detector; here it sits on the ViLD student, so
that the classification, instance distillation and test-time behaviour are ViLD's.
"""
from typing import List, Optional, Tuple

from mmdet.structures import DetDataSample
from torch import Tensor

from vlkd.registry import MODELS
from .hierkd_global import GlobalCaptionDistillation
from .vild_roi_head import ViLDRoIHead


@MODELS.register_module()
class HierKDRoIHead(ViLDRoIHead):
    """:class:`ViLDRoIHead` with HierKD's global caption distillation added to its losses.

    Args:
        global_distillation: keyword arguments of :class:`GlobalCaptionDistillation` except
            ``in_channels`` and ``embed_dim`` (taken from the RoI extractor and the box
            head); ``teacher`` defaults to the box head's vocabulary teacher.
        **kwargs: as for :class:`ViLDRoIHead` (``region_distillation``: instance level).
    """

    def __init__(self, *args, global_distillation: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = dict(global_distillation or {})
        if 'teacher' not in cfg:
            cfg['teacher'] = self.bbox_head.vocabulary.teacher_cfg
            if cfg['teacher'] is None:
                raise ValueError('global_distillation needs a teacher to embed the captions: '
                                 'the box head reads its vocabulary from a file, so give '
                                 'global_distillation=dict(teacher=...).')
        self.global_distillation = GlobalCaptionDistillation(
            in_channels=self.bbox_roi_extractor.out_channels,
            embed_dim=self.bbox_head.embed_dim, **cfg)

    def loss(self, x: Tuple[Tensor], rpn_results_list,
             batch_data_samples: List[DetDataSample]) -> dict:
        losses = super().loss(x, rpn_results_list, batch_data_samples)
        losses['loss_global_distill'] = self.global_distillation_loss(x, batch_data_samples)
        return losses

    def global_distillation_loss(self, x: Tuple[Tensor],
                                 batch_data_samples: List[DetDataSample]) -> Tensor:
        """The global loss of a batch; every sample must carry a caption in its metainfo."""
        captions = []
        for sample in batch_data_samples:
            if 'caption' not in sample.metainfo:
                raise KeyError(
                    f"Training image {sample.metainfo.get('img_path', '?')} has no caption: "
                    "HierKD needs dict(type='vlkd.AttachCaption', ann_file=CAPTIONS) in the "
                    "train pipeline and 'caption' in the meta_keys of PackDetInputs.")
            captions.append(sample.metainfo['caption'])
        text = self.global_distillation.captions.encode(captions, x[0].device)
        image_shapes = [sample.metainfo['img_shape'][:2] for sample in batch_data_samples]
        batch_shape = batch_data_samples[0].metainfo['batch_input_shape']
        return self.global_distillation(x, text, image_shapes, batch_shape)
