"""A detector backbone initialised from a CLIP ResNet teacher's image tower.

Open-vocabulary detectors usually start from pretrained weights (ImageNet, or the VLM's own
image tower as in RegionCLIP and F-VLM). vlkd has no downloaded weights, but it has the
teacher: :class:`CLIPResNetBackbone` copies the convolutional trunk of a CLIP ResNet tower
(open_clip's ``ModifiedResNet``: three-conv stem, bottleneck stages with average-pool
downsampling; the attention pool is left out) and returns the four stage outputs, strides
4, 8, 16 and 32, for an FPN. The copy is trained with the detector; the teacher itself
stays frozen and untouched.

The detector's data preprocessor must normalise pixels as the teacher does (CLIP mean /
std, RGB): the trunk's batch-norm statistics were learned on such inputs.
"""
import copy
from typing import Sequence, Tuple

from mmengine.model import BaseModule
from open_clip.modified_resnet import ModifiedResNet
from torch import Tensor, nn

from vlkd.registry import MODELS
from vlkd.teachers import build_teacher


@MODELS.register_module()
class CLIPResNetBackbone(BaseModule):
    """The stem and four stages of a CLIP ResNet teacher, as a trainable backbone.

    Args:
        teacher: config dict of a teacher whose image tower is a CLIP ResNet
            (``dict(type='VLKDTeacher', checkpoint=...)`` or an ``OpenCLIPTeacher``).
        out_indices: which stages to return (0 = stride 4 ... 3 = stride 32).
        frozen_stages: stages up to this index (and the stem, if >= 0) get no gradient;
            -1 trains everything.
        norm_eval: keep batch-norm layers in eval mode (running statistics fixed).

    Attributes:
        out_channels: channels of each returned stage (for the FPN's ``in_channels``).
    """

    def __init__(self, teacher: dict, out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1, norm_eval: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(f'out_indices must be among 0..3, got {tuple(out_indices)}')
        visual = getattr(getattr(build_teacher(teacher), 'model', None), 'visual', None)
        if not isinstance(visual, ModifiedResNet):
            raise TypeError(
                'CLIPResNetBackbone copies a CLIP ResNet image tower (open_clip '
                f'ModifiedResNet); the teacher {teacher.get("type")!r} has '
                f'{type(visual).__name__}. Use a ResNet teacher or an mmdet backbone.')
        visual = copy.deepcopy(visual)
        self.stem = nn.Sequential(visual.conv1, visual.bn1, visual.act1,
                                  visual.conv2, visual.bn2, visual.act2,
                                  visual.conv3, visual.bn3, visual.act3, visual.avgpool)
        self.stages = nn.ModuleList([visual.layer1, visual.layer2, visual.layer3,
                                     visual.layer4])
        self.out_indices = tuple(out_indices)
        self.out_channels = [self.stages[i][-1].conv3.out_channels for i in self.out_indices]
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.requires_grad_(True)  # the teacher's weights were frozen; the copy learns
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for module in [self.stem, *self.stages[:self.frozen_stages + 1]]:
                module.eval()
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'CLIPResNetBackbone':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Normalised images (B, 3, H, W) -> stage outputs (B, C_i, H / s_i, W / s_i)."""
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
