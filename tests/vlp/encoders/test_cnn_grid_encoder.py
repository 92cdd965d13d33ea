"""CNNGridEncoder: grid features against the ResNet run stage by stage here, tokens against
the projection formula, timm backbones, local weights and freezing."""
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision

from vlkd.registry import MODELS
from vlkd.vlp.encoders import CNNGridEncoder


def resnet_layer4(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def test_torchvision_grid_from_local_weights(tmp_path):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    torch.save(resnet.state_dict(), tmp_path / 'resnet18.pth')
    encoder = MODELS.build(dict(type='CNNGridEncoder', backbone='resnet18', out_dim=16,
                                image_size=64, pretrained=str(tmp_path / 'resnet18.pth')))
    encoder.eval()
    x = torch.randn(2, 3, 64, 64)
    out = encoder(x)
    with torch.no_grad():
        grid = resnet_layer4(resnet, x)  # (2, 512, 2, 2)
    expected_features = grid.flatten(2).transpose(1, 2)
    torch.testing.assert_close(out.features, expected_features)
    expected = F.layer_norm(expected_features @ encoder.projection.weight.T
                            + encoder.projection.bias + encoder.position_embedding, (16,),
                            encoder.norm.weight, encoder.norm.bias)
    torch.testing.assert_close(out.tokens, expected)
    torch.testing.assert_close(out.cls, expected.mean(1))
    assert encoder.grid_size == (2, 2) and out.mask.shape == (2, 4) and out.mask.all()


def test_timm_backbone_grid():
    torch.manual_seed(0)
    encoder = CNNGridEncoder('resnet18', library='timm', out_dim=8, image_size=64).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = encoder.backbone.forward_features(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(encoder(x).features, expected)
    reference = timm.create_model('resnet18', pretrained=False, num_classes=0).eval()
    reference.load_state_dict(encoder.backbone.state_dict())
    torch.testing.assert_close(reference.forward_features(x).flatten(2).transpose(1, 2),
                               expected)


def test_frozen_backbone_keeps_batch_norm_statistics():
    encoder = CNNGridEncoder('resnet18', out_dim=8, image_size=64, frozen=True).train()
    before = encoder.backbone.bn1.running_mean.clone()
    encoder(torch.randn(2, 3, 64, 64)).tokens.sum().backward()
    assert torch.equal(encoder.backbone.bn1.running_mean, before)
    assert all(p.grad is None for p in encoder.backbone.parameters())
    assert encoder.projection.weight.grad is not None


def test_bad_inputs():
    with pytest.raises(ValueError, match="'torchvision' or 'timm'"):
        CNNGridEncoder(library='keras')
    encoder = CNNGridEncoder('resnet18', out_dim=8, image_size=64)
    with pytest.raises(ValueError, match=r'\(B, 3, 64, 64\)'):
        encoder(torch.zeros(1, 3, 32, 32))
