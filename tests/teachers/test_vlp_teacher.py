"""VLKDTeacher on VLPModel checkpoints: the teacher's embeddings equal the model's joint-space
embeddings of the same pixels and texts; recipes without a joint space are refused."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vlkd.registry import MODELS
from vlkd.teachers import VLKDTeacher, VLPCheckpointTeacher, build_teacher

VIT = dict(type='ViTPatchEncoder',
           vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=1, head_width=16))
BERT = dict(type='BertTextEncoder', max_length=16,
            bert_cfg=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64))
ALBEF = dict(type='VLPModel', image_encoder=VIT, text_encoder=BERT,
             fusion=dict(type='CrossAttentionFusion', width=32, depth=1, num_heads=2),
             objectives=dict(itc=dict(type='MomentumContrastTask', embed_dim=16, queue_size=8),
                             itm=dict(type='ImageTextMatchingTask'),
                             mlm=dict(type='MaskedLanguageTask', distill=True)),
             momentum=dict(momentum=0.995),
             zero_shot=dict(classes=['star', 'heart'], templates=['a {}', 'the {}']))


def save(model_cfg: dict, path) -> torch.nn.Module:
    """A randomly initialised model saved as tools/train.py would (config text + weights)."""
    init_default_scope('vlkd')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    for param in model.parameters():  # not the initial values: shows the weights are loaded
        param.data.add_(0.01 * torch.randn_like(param))
    cfg = Config(dict(model=model_cfg, default_scope='vlkd'))
    torch.save(dict(meta=dict(cfg=cfg.pretty_text), state_dict=model.state_dict()), path)
    return model.eval()


def test_albef_towers_teach(tmp_path):
    model = save(ALBEF, tmp_path / 'albef.pth')
    teacher = build_teacher(dict(type='VLKDTeacher', checkpoint=str(tmp_path / 'albef.pth')))
    assert isinstance(teacher, VLPCheckpointTeacher)
    assert teacher.image_size == 32 and teacher.embed_dim == 16
    assert teacher.templates == ('a {}', 'the {}')  # the recipe's zero-shot templates
    assert list(teacher.model.tasks) == ['itc'] and teacher.model.momentum is None
    texts = ['a red star', 'a heart']
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(teacher.encode_text(texts), model.encode_text(texts))
        data = model.data_preprocessor(dict(inputs=list(rgb.flip(1))), False)  # BGR input
        torch.testing.assert_close(teacher.encode_image(rgb.float()),
                                   model.encode_image(data['inputs']))
    boxes = [torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([[0.0, 0.0, 32.0, 32.0]])]
    regions = teacher.encode_regions(rgb.float(), boxes)
    torch.testing.assert_close(torch.cat(regions), teacher.encode_image(rgb.float()),
                               atol=1e-4, rtol=1e-4)
    assert VLKDTeacher(str(tmp_path / 'albef.pth')).fingerprint == teacher.fingerprint


def test_recipes_without_a_joint_space_or_pixels_are_refused(tmp_path):
    vilt = dict(type='VLPModel', image_encoder=VIT, text_encoder=BERT,
                fusion=dict(type='SingleStreamFusion', width=32, depth=1, num_heads=2),
                objectives=dict(itm=dict(type='ImageTextMatchingTask', hard_negatives=False)))
    save(vilt, tmp_path / 'vilt.pth')
    with pytest.raises(ValueError, match='no joint image-text embedding space'):
        VLKDTeacher(str(tmp_path / 'vilt.pth'))
    regions = dict(type='VLPModel', text_encoder=BERT,
                   image_encoder=dict(type='RegionFeatureEncoder', out_dim=32, feature_dim=8),
                   objectives=dict(itc=dict(type='ImageTextContrastTask', embed_dim=16)))
    save(regions, tmp_path / 'regions.pth')
    with pytest.raises(ValueError, match='regions or video, not pixels'):
        VLKDTeacher(str(tmp_path / 'regions.pth'))


def test_dense_embeddings_are_patch_tokens_through_the_joint_projection(tmp_path):
    model = save(ALBEF, tmp_path / 'albef.pth')
    teacher = VLKDTeacher(str(tmp_path / 'albef.pth'))
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(rgb.flip(1))), False)
        tokens = model.backbone.encode_image(data['inputs']).tokens  # (2, 1 + 16, 32)
        projected = model.tasks['itc'].image_projection(tokens[:, 1:])
    expected = F.normalize(projected, dim=-1).transpose(1, 2).reshape(2, 16, 4, 4)
    dense = teacher.encode_dense(rgb.float())
    torch.testing.assert_close(dense, expected)
    # the tower takes 32 px only: other sizes are resized to it
    assert teacher.encode_dense(rgb.float(), size=64).shape == (2, 16, 4, 4)
    with pytest.raises(ValueError, match='no attention keys'):
        teacher.encode_dense(rgb.float(), return_keys=True)


def test_dense_grid_tokens_of_a_cnn_tower(tmp_path):
    cnn = dict(type='VLPModel', text_encoder=BERT,
               image_encoder=dict(type='CNNGridEncoder', backbone='resnet18', out_dim=32,
                                  image_size=64),
               objectives=dict(itc=dict(type='ImageTextContrastTask', embed_dim=16)))
    model = save(cnn, tmp_path / 'cnn.pth')
    teacher = VLKDTeacher(str(tmp_path / 'cnn.pth'))
    rgb = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(rgb.flip(1))), False)
        tokens = model.backbone.encode_image(data['inputs']).tokens  # (1, 2 * 2, 32)
        projected = model.tasks['itc'].image_projection(tokens)
    dense = teacher.encode_dense(rgb.float())
    assert dense.shape == (1, 16, 2, 2)
    torch.testing.assert_close(dense[0, :, 1, 0], F.normalize(projected[0, 2], dim=0))


def test_recipes_without_a_patch_projection_have_no_dense_embeddings(tmp_path):
    fdt = dict(type='VLPModel', image_encoder=VIT, text_encoder=BERT,
               objectives=dict(fdt=dict(type='FDTContrastTask', num_tokens=8, token_dim=16)))
    save(fdt, tmp_path / 'fdt.pth')
    teacher = VLKDTeacher(str(tmp_path / 'fdt.pth'))
    assert teacher.encode_image(torch.zeros(1, 3, 32, 32)).shape == (1, 16)
    with pytest.raises(ValueError, match='FDTContrastTask joint space .* no projection'):
        teacher.encode_dense(torch.zeros(1, 3, 32, 32))
