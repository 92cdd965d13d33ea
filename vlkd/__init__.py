"""vlkd: vision-language pretraining and its distillation into dense models.

Importing vlkd first installs the compatibility layer (:mod:`vlkd.compat`), so that
mmdet and mmseg models import and run with mmcv-lite on recent torch.
"""
from . import compat

compat.install()

__version__ = '0.1.0'
