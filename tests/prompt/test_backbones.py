"""Prompt backbones against the libraries' own forward passes: open_clip's encode_text /
encode_image and transformers' get_text_features / get_image_features, with prompt tokens
put in by forward hooks on the libraries' own modules (an independent route to the same
computation)."""
import pytest
import torch

from vlkd.prompt import HFCLIPBackbone, OpenCLIPBackbone, PromptBackbone, prompt_backbone
from vlkd.prompt.backbones import UnsupportedBackboneError
from vlkd.prompt.text_prompts import layout_prompts

NAMES = ['circle', 'ellipse', 'arrow', 'star']


def _pixels(teacher, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, teacher.image_size, teacher.image_size, generator=g)


def _replace_at(index, values):
    """A forward pre-hook putting ``values`` (P, W) at positions ``index`` (N, P) of the
    block's input (N, L, W)."""
    def hook(module, args, kwargs):
        x = args[0].clone()
        for row in range(len(x)):
            x[row, index[row]] = values.to(x.dtype)
        return (x,) + args[1:], kwargs
    return hook


def _insert_after_first(values):
    """A forward pre-hook inserting ``values`` (P, W) after the first token."""
    def hook(module, args):
        x = args[0]
        return (torch.cat([x[:, :1], values.expand(len(x), -1, -1), x[:, 1:]], dim=1),)
    return hook


def _replace_after_first(values):
    def hook(module, args, kwargs):
        x = args[0].clone()
        x[:, 1:1 + len(values)] = values
        return (x,) + args[1:], kwargs
    return hook


@pytest.fixture(params=['open_clip', 'transformers'])
def any_teacher(request, teacher, hf_teacher):
    return teacher if request.param == 'open_clip' else hf_teacher


def _tokenize(teacher, texts):
    """Token ids (N, L) with the teacher's own tokenizer."""
    if isinstance(prompt_backbone(teacher), HFCLIPBackbone):
        return teacher.tokenizer(texts, padding='max_length', max_length=teacher.context_length,
                                 return_tensors='pt')['input_ids']
    return teacher.tokenizer(texts)


def _encode_text(teacher, ids):
    if isinstance(prompt_backbone(teacher), HFCLIPBackbone):
        return teacher.model.get_text_features(input_ids=ids).pooler_output
    return teacher.model.encode_text(ids)


def _encode_image(teacher, pixels):
    if isinstance(prompt_backbone(teacher), HFCLIPBackbone):
        return teacher.model.get_image_features(pixel_values=pixels).pooler_output
    return teacher.model.encode_image(pixels)


def _text_blocks(teacher):
    model = teacher.model
    return model.text_model.encoder.layers if hasattr(model, 'text_model') \
        else model.transformer.resblocks


def _vision_parts(teacher):
    """(the module whose input is the embedded sequence, the transformer blocks)."""
    model = teacher.model
    if hasattr(model, 'vision_model'):
        return model.vision_model.pre_layrnorm, model.vision_model.encoder.layers
    return model.visual.ln_pre, model.visual.transformer.resblocks


def test_accessor_choice(teacher, hf_teacher):
    assert type(prompt_backbone(teacher)) is OpenCLIPBackbone
    assert type(prompt_backbone(hf_teacher)) is HFCLIPBackbone


@pytest.mark.parametrize('template', ['{}.', 'a photo of a {}.', 'there is a {} here'])
def test_layout_without_context_is_the_tokenized_template(any_teacher, template):
    from vlkd.teachers.templates import fill_template
    layout = layout_prompts(prompt_backbone(any_teacher), NAMES, 0, template)
    expected = _tokenize(any_teacher, [fill_template(template, n) for n in NAMES])
    assert torch.equal(layout.token_ids, expected)
    assert layout.context_index.shape == (len(NAMES), 0)


@pytest.mark.parametrize('position', ['end', 'middle', 'front'])
def test_layout_places_context_around_the_name(teacher, position):
    backbone = prompt_backbone(teacher)
    layout = layout_prompts(backbone, ['ellipse', 'star'], 4, 'a {} here', position)
    x = backbone.word_ids('X')[0]
    for row, name in enumerate(['ellipse', 'star']):
        words = backbone.word_ids('an' if name == 'ellipse' else 'a') + backbone.word_ids(name)
        before, after = {'end': (4, 0), 'middle': (2, 2), 'front': (0, 4)}[position]
        expected = [backbone.bos_id] + [x] * before + words + [x] * after + \
            backbone.word_ids('here') + [backbone.eos_id]
        assert layout.token_ids[row, :len(expected)].tolist() == expected
        slots = [i for i, t in enumerate(expected) if t == x]
        assert layout.context_index[row].tolist() == slots


def test_layout_too_long_is_an_error_naming_the_class(teacher):
    with pytest.raises(ValueError, match=r"'circle' is \d+ tokens.*takes 16"):
        layout_prompts(prompt_backbone(teacher), ['circle'], 16)


def test_text_path_matches_the_library(any_teacher):
    backbone = prompt_backbone(any_teacher)
    layout = layout_prompts(backbone, NAMES, 0, 'a photo of a {}.')
    with torch.no_grad():
        ours = backbone.encode_token_embeddings(backbone.embed_tokens(layout.token_ids),
                                                layout.token_ids)
        theirs = _encode_text(any_teacher, layout.token_ids)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_deep_text_prompts_match_hooked_library(any_teacher):
    backbone = prompt_backbone(any_teacher)
    layout = layout_prompts(backbone, NAMES, 3, '{}.', 'middle')
    g = torch.Generator().manual_seed(1)
    context = torch.randn(3, backbone.text_width, generator=g)
    deep = [torch.randn(3, backbone.text_width, generator=g)]
    ids, index = layout.token_ids, layout.context_index
    with torch.no_grad():
        embeddings = backbone.embed_tokens(ids)
        for row in range(len(ids)):
            embeddings[row, index[row]] = context
        ours = backbone.encode_token_embeddings(embeddings.clone(), ids, deep, index)
        # the library's own forward, its token embedding and second block patched by hooks
        embedding_module = backbone.model.text_model.embeddings.token_embedding \
            if isinstance(backbone, HFCLIPBackbone) else backbone.model.token_embedding
        handles = [embedding_module.register_forward_hook(lambda m, a, out: embeddings),
                   _text_blocks(any_teacher)[1].register_forward_pre_hook(
                       _replace_at(index, deep[0]), with_kwargs=True)]
        try:
            theirs = _encode_text(any_teacher, ids)
        finally:
            for handle in handles:
                handle.remove()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    # and the prompts matter
    assert not torch.allclose(ours, backbone.encode_token_embeddings(
        backbone.embed_tokens(ids), ids).detach(), atol=1e-4)


def test_image_path_without_prompts_matches_the_library(any_teacher):
    backbone = prompt_backbone(any_teacher)
    pixels = _pixels(any_teacher)
    with torch.no_grad():
        ours = backbone.prompted_image_features(pixels, torch.zeros(0, backbone.image_width))
        theirs = _encode_image(any_teacher, pixels)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(backbone.image_features(pixels), theirs)


@pytest.mark.parametrize('deep', [False, True])
def test_visual_prompts_match_hooked_library(any_teacher, deep):
    backbone = prompt_backbone(any_teacher)
    g = torch.Generator().manual_seed(2)
    prompts = torch.randn(2, backbone.image_width, generator=g)
    deep_prompts = [torch.randn(2, backbone.image_width, generator=g)] if deep else []
    pixels = _pixels(any_teacher)
    with torch.no_grad():
        ours = backbone.prompted_image_features(pixels, prompts, deep_prompts)
        first, blocks = _vision_parts(any_teacher)
        handles = [first.register_forward_pre_hook(_insert_after_first(prompts))]
        if deep:
            handles.append(blocks[1].register_forward_pre_hook(
                _replace_after_first(deep_prompts[0]), with_kwargs=True))
        try:  # class-token pooling: the prompt tokens need no removal before it
            theirs = _encode_image(any_teacher, pixels)
        finally:
            for handle in handles:
                handle.remove()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    plain = backbone.image_features(pixels)
    assert not torch.allclose(ours, plain, atol=1e-4)


def test_average_pooling_drops_the_prompt_tokens(teacher):
    """With average pooling, prompts must leave before pooling: zero prompts of any
    number then change nothing only if they are removed (they still attend, so compare
    a one-token prompt run against a manual mean over the patch tokens)."""
    backbone = prompt_backbone(teacher)
    visual = teacher.model.visual
    visual.pool_type = 'avg'
    try:
        prompts = torch.randn(3, backbone.image_width)
        pixels = _pixels(teacher)
        tokens = {}
        handle = visual.ln_post.register_forward_hook(
            lambda m, a, out: tokens.setdefault('x', out))
        with torch.no_grad():
            ours = backbone.prompted_image_features(pixels, prompts)
        handle.remove()
        expected = tokens['x'][:, 1:].mean(dim=1) @ visual.proj
        assert tokens['x'].shape[1] == 1 + 16  # class token + patches, prompts removed
        torch.testing.assert_close(ours, expected)
    finally:
        visual.pool_type = 'tok'


def test_deep_prompts_beyond_the_tower_are_an_error(teacher):
    backbone = prompt_backbone(teacher)
    prompts = torch.zeros(1, backbone.image_width)
    with pytest.raises(ValueError, match='at most 1'):
        backbone.prompted_image_features(_pixels(teacher), prompts, [prompts, prompts])


def test_towers_vlkd_cannot_open_are_clear_errors(teacher_cfg):
    from vlkd.teachers import build_teacher
    resnet = dict(teacher_cfg, pretrained=None, model_cfg=dict(
        teacher_cfg['model_cfg'], vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1],
                                                  width=16, head_width=16)))
    backbone = prompt_backbone(build_teacher(resnet))
    backbone.require_text_tokens('CoOp')  # the text tower is open_clip's own: fine
    with pytest.raises(UnsupportedBackboneError, match='VPT inserts prompt tokens into a ViT.*'
                       'ModifiedResNet.*CLIP-Adapter'):
        backbone.require_vit('VPT')
    generic = PromptBackbone(build_teacher(teacher_cfg))
    with pytest.raises(UnsupportedBackboneError, match='CoOp puts learnable vectors among the '
                       'token embeddings.*Tip-Adapter'):
        generic.require_text_tokens('CoOp')
