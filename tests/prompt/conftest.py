"""Fixtures of the prompt-learning tests: tiny open_clip and transformers CLIP teachers
with two layers per tower (deep prompts need more than one); the shared tiny shapes data
and config relocation are in tests/conftest.py."""
import pytest
import torch

TWO_LAYER_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=2))


@pytest.fixture(scope='session')
def teacher_cfg(tmp_path_factory):
    """OpenCLIPTeacher config: a 2-layer ViT / 2-layer text CLIP with fixed random weights
    in a local file, 'shapes' templates."""
    from vlkd.vlp.clip_model import build_open_clip_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('prompt_teacher') / 'two_layer_clip.pt'
    torch.save(build_open_clip_model(model_cfg=TWO_LAYER_CLIP_CFG).state_dict(), path)
    return dict(type='OpenCLIPTeacher', model_cfg=TWO_LAYER_CLIP_CFG, pretrained=str(path),
                templates='shapes')


@pytest.fixture
def teacher(teacher_cfg):
    from vlkd.teachers import build_teacher
    return build_teacher(teacher_cfg)


HF_CLIP_CFG = dict(
    text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=16, vocab_size=49408,
                     eos_token_id=49407),
    vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, image_size=32, patch_size=8),
    projection_dim=24)


@pytest.fixture
def hf_teacher():
    """HFCLIPTeacher: a tiny random transformers CLIPModel, CLIP BPE tokenizer."""
    from vlkd.teachers import build_teacher
    torch.manual_seed(0)
    return build_teacher(dict(type='HFCLIPTeacher', config=HF_CLIP_CFG, templates='shapes'))
