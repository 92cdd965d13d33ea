"""Open-vocabulary detection students for mmdet."""
from .proposal_embedding import BuildRegionCacheHook, build_region_cache
from .region_cache import RegionEmbeddingCache, write_region_cache
from .vild_bbox_head import ViLDBBoxHead
from .vild_roi_head import ViLDRoIHead
from .vocabulary import TextVocabulary, check_class_names

__all__ = ['BuildRegionCacheHook', 'build_region_cache', 'RegionEmbeddingCache',
           'write_region_cache', 'ViLDBBoxHead', 'ViLDRoIHead', 'TextVocabulary',
           'check_class_names']
