"""Open-vocabulary detection students for mmdet."""
from .class_check import CheckClassNamesHook, ClassNamesMismatch
from .hierkd_captions import AttachCaption, flip_caption
from .hierkd_global import (CaptionEncoder, CaptionGuidedPooling, GlobalCaptionDistillation,
                            flatten_feature_levels)
from .hierkd_roi_head import HierKDRoIHead
from .glip_bbox_head import GLIPBBoxHead
from .glip_prompt import (BertPromptEncoder, ClassPromptEncoder, build_prompt_encoder,
                          detection_prompt)
from .inference import OpenVocabDetector, coco_detections
from .proposal_embedding import BuildRegionCacheHook, build_region_cache, embed_regions
from .region_cache import (RegionCacheMismatch, RegionCacheWriter, RegionEmbeddingCache,
                           cache_key, write_region_cache)
from .rkd_bbox_head import RKDBBoxHead
from .rkd_roi_head import RKDRoIHead
from .teacher_backbone import CLIPResNetBackbone
from .teacher_boxes import TeacherBoxClassifier
from .vild_bbox_head import ViLDBBoxHead
from .vild_ensemble import (ViLDEnsembleBBoxHead, ViLDEnsembleRoIHead, ViLDFasterRCNN,
                            vild_ensemble_scores)
from .vild_image_bbox_head import ViLDImageBBoxHead
from .vild_roi_head import ViLDRoIHead
from .vocabulary import TextVocabulary, check_class_names, read_vocabulary_file

__all__ = ['GLIPBBoxHead', 'ClassPromptEncoder', 'BertPromptEncoder', 'build_prompt_encoder',
           'detection_prompt',
           'CLIPResNetBackbone', 'CheckClassNamesHook', 'ClassNamesMismatch', 'OpenVocabDetector',
           'coco_detections', 'BuildRegionCacheHook', 'build_region_cache', 'embed_regions',
           'RegionCacheMismatch', 'RegionCacheWriter', 'RegionEmbeddingCache', 'cache_key',
           'write_region_cache', 'ViLDBBoxHead', 'ViLDEnsembleBBoxHead', 'ViLDEnsembleRoIHead',
           'ViLDFasterRCNN', 'vild_ensemble_scores', 'ViLDImageBBoxHead', 'ViLDRoIHead',
           'TextVocabulary', 'check_class_names', 'read_vocabulary_file', 'TeacherBoxClassifier',
           'RKDBBoxHead', 'RKDRoIHead',
           'AttachCaption', 'flip_caption', 'CaptionEncoder', 'CaptionGuidedPooling',
           'GlobalCaptionDistillation', 'flatten_feature_levels', 'HierKDRoIHead']
