"""CLIPResNetBackbone: the trunk of a CLIP ResNet teacher, checked against open_clip's own
modules, trainable without touching the teacher."""
import pytest
import torch

from vlkd.det.teacher_backbone import CLIPResNetBackbone
from vlkd.teachers import build_teacher
from vlkd.vlp.clip_model import build_open_clip_model

RESNET_CLIP = dict(embed_dim=32, vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=16,
                                                  head_width=16),
                   text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2,
                                 layers=1))


@pytest.fixture(scope='module')
def resnet_teacher_cfg(tmp_path_factory):
    torch.manual_seed(0)
    model = build_open_clip_model(model_cfg=RESNET_CLIP)
    # non-trivial batch-norm statistics, so that copying them is tested too
    for module in model.visual.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp('teacher') / 'resnet_clip.pt'
    torch.save(model.state_dict(), path)
    return dict(type='OpenCLIPTeacher', model_cfg=RESNET_CLIP, pretrained=str(path))


def test_stage_outputs_equal_the_teachers_tower(resnet_teacher_cfg):
    backbone = CLIPResNetBackbone(resnet_teacher_cfg).eval()
    visual = build_teacher(resnet_teacher_cfg).model.visual
    x = torch.randn(2, 3, 64, 96)
    outs = backbone(x)
    with torch.no_grad():  # open_clip's own stem and stages, one after the other
        expected, y = [], visual.stem(x)
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            y = layer(y)
            expected.append(y)
    assert [o.shape for o in outs] == [e.shape for e in expected]
    # strides 4, 8, 16, 32 and 4 * width * 2^i channels
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 16, 24), (128, 8, 12), (256, 4, 6),
                                                 (512, 2, 3)]
    assert backbone.out_channels == [64, 128, 256, 512]
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp)


def test_the_copy_trains_and_the_teacher_stays(resnet_teacher_cfg):
    backbone = CLIPResNetBackbone(resnet_teacher_cfg, out_indices=(1, 3))
    teacher = build_teacher(resnet_teacher_cfg)
    before = {k: v.clone() for k, v in teacher.model.visual.state_dict().items()}
    assert all(p.requires_grad for p in backbone.parameters())
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1)
    outs = backbone(torch.randn(2, 3, 64, 64))
    assert len(outs) == 2
    sum(o.square().mean() for o in outs).backward()
    optimizer.step()
    assert backbone.stem[0].weight.grad is not None
    for key, value in teacher.model.visual.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # the backbone did move away from the teacher
    assert not torch.equal(backbone.stem[0].weight, before['conv1.weight'])


def test_frozen_stages_and_norm_eval(resnet_teacher_cfg):
    backbone = CLIPResNetBackbone(resnet_teacher_cfg, frozen_stages=1, norm_eval=True).train()
    frozen = list(backbone.stem.parameters()) + list(backbone.stages[:2].parameters())
    assert not any(p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in backbone.stages[2:].parameters())
    norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)


def test_a_vit_teacher_and_bad_stages_are_refused(tiny_teacher_cfg, resnet_teacher_cfg):
    with pytest.raises(TypeError, match='copies a CLIP ResNet image tower.*VisionTransformer'):
        CLIPResNetBackbone(tiny_teacher_cfg)
    with pytest.raises(ValueError, match='out_indices'):
        CLIPResNetBackbone(resnet_teacher_cfg, out_indices=(4,))
