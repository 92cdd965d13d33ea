"""vlkd: vision-language pretraining and its distillation into dense models.

Importing vlkd first installs the compatibility layer (:mod:`vlkd.compat`), so that
mmdet and mmseg models import and run with mmcv-lite on recent torch, then lets mmengine
load ``zoo://NAME`` checkpoints from the model zoo (:mod:`vlkd.zoo`).
"""
from . import compat

compat.install()

from . import zoo  # noqa: E402  (after the compat layer: zoo imports mmengine)

zoo.register_zoo_scheme()

__version__ = '0.1.0'
