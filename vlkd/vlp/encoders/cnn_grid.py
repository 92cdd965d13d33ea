"""CNN grid features: the last feature map of a ResNet-style network as a token grid."""
from typing import Optional

import timm
import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import _plain
from .output import EncoderOutput
from .tower import TowerEncoder, load_weights


@MODELS.register_module()
class CNNGridEncoder(TowerEncoder):
    """A CNN's final feature map (B, C, h, w) flattened row-major to h*w grid tokens.

    ``features`` are the raw grid vectors (B, h*w, C); ``tokens`` = LayerNorm(W f + p) with a
    learned position embedding ``p`` per grid cell (B, h*w, out_dim); ``cls`` their mean.

    Args:
        backbone: a torchvision model name (``'resnet18'``, ``'resnet50'``) or, with
            ``library='timm'``, a timm model name; built with random weights.
        library: ``'torchvision'`` or ``'timm'``.
        out_dim: token width D.
        image_size: input side (px) the position embeddings are made for.
        feature_node: torchvision only: the node whose output is the grid (``'layer4'``).
        backbone_kwargs: extra arguments of the model constructor.
        pretrained: local weights of the whole backbone model (its classifier, if in the
            file, is ignored for timm models); ``prefix`` its key prefix in the file.
        frozen: freeze the backbone (batch norm in eval mode); projection, positions and
            LayerNorm stay trainable.
    """

    def __init__(self, backbone: str = 'resnet18', library: str = 'torchvision',
                 out_dim: int = 256, image_size: int = 224, feature_node: str = 'layer4',
                 backbone_kwargs: Optional[dict] = None, pretrained: Optional[str] = None,
                 prefix: str = '', frozen: bool = False):
        super().__init__()
        kwargs = _plain(backbone_kwargs or {})
        if library == 'torchvision':
            model = torchvision.models.get_model(backbone, weights=None, **kwargs)
            if pretrained is not None:
                load_weights(model, pretrained, prefix=prefix)
            self.backbone = create_feature_extractor(model, return_nodes={feature_node: 'grid'})
        elif library == 'timm':
            self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0,
                                              **kwargs)
            if pretrained is not None:
                classifier = self.backbone.pretrained_cfg.get('classifier', 'head')
                load_weights(self.backbone, pretrained, prefix=prefix, ignore=(classifier + '.',))
        else:
            raise ValueError(f"library must be 'torchvision' or 'timm', got {library!r}.")
        self.library = library
        with torch.no_grad():
            self.backbone.eval()
            channels, *grid = self._feature_map(torch.zeros(1, 3, image_size, image_size)).shape[1:]
            self.backbone.train()
        self.grid_size = tuple(grid)
        self.image_size = image_size
        self.width = out_dim
        self.projection = nn.Linear(channels, out_dim)
        self.position_embedding = nn.Parameter(torch.randn(grid[0] * grid[1], out_dim) * 0.02)
        self.norm = nn.LayerNorm(out_dim)
        if frozen:
            self.freeze('backbone')

    def _feature_map(self, images: Tensor) -> Tensor:
        if self.library == 'torchvision':
            return self.backbone(images)['grid']
        return self.backbone.forward_features(images)

    def forward(self, images: Tensor) -> EncoderOutput:
        """Images (B, 3, S, S), S = ``image_size`` -> ``h*w`` grid tokens."""
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f'CNNGridEncoder takes (B, 3, {self.image_size}, '
                             f'{self.image_size}) images, got {tuple(images.shape)}.')
        features = self._feature_map(images).flatten(2).transpose(1, 2)
        tokens = self.norm(self.projection(features) + self.position_embedding)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return EncoderOutput(tokens=tokens, mask=mask, cls=tokens.mean(dim=1), features=features)
