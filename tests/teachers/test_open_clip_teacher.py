"""OpenCLIPTeacher: weights from a local file only; build_teacher from config dicts."""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import OpenCLIPTeacher, Teacher, build_teacher


@pytest.fixture
def weights_file(tmp_path, tiny_clip_cfg):
    """A tiny random open_clip CLIP saved as a state dict; returns (path, model)."""
    torch.manual_seed(7)
    model = open_clip.CLIP(**tiny_clip_cfg).eval()
    path = tmp_path / 'tiny_clip.pt'
    torch.save(model.state_dict(), path)
    return path, model


def test_loads_local_weights(weights_file, tiny_clip_cfg):
    path, model = weights_file
    torch.manual_seed(0)  # a different random init, overwritten by the file
    teacher = OpenCLIPTeacher(model_cfg=tiny_clip_cfg, pretrained=str(path))
    tokenizer = open_clip.SimpleTokenizer(context_length=16)
    images = torch.rand(2, 3, 32, 32) * 255
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        texts = F.normalize(model.encode_text(tokenizer(['a red star', 'a circle'])), dim=-1)
        pixels = F.normalize(model.encode_image((images - mean) / std), dim=-1)
    torch.testing.assert_close(teacher.encode_text(['a red star', 'a circle']), texts)
    torch.testing.assert_close(teacher.encode_image(images), pixels)
    assert (teacher.image_size, teacher.embed_dim) == (32, 32)


def test_fingerprint_follows_the_weights(weights_file, tiny_clip_cfg):
    path, _ = weights_file
    first = OpenCLIPTeacher(model_cfg=tiny_clip_cfg, pretrained=str(path))
    again = OpenCLIPTeacher(model_cfg=tiny_clip_cfg, pretrained=str(path))
    random_weights = OpenCLIPTeacher(model_cfg=tiny_clip_cfg)
    assert first.fingerprint == again.fingerprint != random_weights.fingerprint
    assert len(first.fingerprint) == 64


def test_never_downloads():
    with pytest.raises(FileNotFoundError, match='download tag of ViT-B-32.*Download the '
                                                'weights file yourself'):
        OpenCLIPTeacher('ViT-B-32', pretrained='openai')
    with pytest.raises(FileNotFoundError, match='no such file'):
        OpenCLIPTeacher('ViT-B-32', pretrained='/nonexistent/weights.bin')
    with pytest.raises(ValueError, match='not a built-in open_clip architecture'):
        OpenCLIPTeacher('hf-hub:timm/some-model')


def test_build_teacher_from_config(weights_file, tiny_clip_cfg):
    path, _ = weights_file
    teacher = build_teacher(dict(type='OpenCLIPTeacher', model_cfg=tiny_clip_cfg,
                                 pretrained=str(path), templates='shapes'))
    assert isinstance(teacher, Teacher) and teacher.templates[0] == 'a {}'
    assert build_teacher(teacher) is teacher
    with pytest.raises(TypeError, match='config dict with a type'):
        build_teacher('work_dirs/clip_shapes_tiny')
    with pytest.raises(TypeError, match='not a vlkd Teacher'):
        build_teacher(dict(type='ImageTextContrastiveLoss'))
