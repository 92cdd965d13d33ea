"""vlkd's registries: children of mmengine's root registries, scope ``vlkd``.

Configs whose ``default_scope`` is ``vlkd`` find vlkd classes by their plain names and
mmdet / mmseg classes with a prefix (``mmdet.FasterRCNN``). A model or dataset dict that
sets ``_scope_='mmdet'`` is built in mmdet's scope; vlkd classes inside it are then written
``vlkd.ViLDRoIHead``.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='vlkd',
                  locations=['vlkd.vlp', 'vlkd.det', 'vlkd.teachers', 'vlkd.seg', 'vlkd.prompt'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='vlkd',
                    locations=['vlkd.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='vlkd',
                      locations=['vlkd.datasets'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='vlkd',
                   locations=['vlkd.evaluation', 'vlkd.prompt'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, scope='vlkd',
                     locations=['vlkd.evaluation'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='vlkd',
                 locations=['vlkd.engine', 'vlkd.det', 'vlkd.vlp', 'vlkd.seg'])
# data-loader functions such as collate_fn: dict(type='vlkd.video_text_collate') (the
# runner looks them up in mmengine's root registry, so give the scope)
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, scope='vlkd',
                     locations=['vlkd.datasets'])
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, scope='vlkd',
                       locations=['vlkd.engine'])
