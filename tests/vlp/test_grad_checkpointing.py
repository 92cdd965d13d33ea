"""Gradient checkpointing switches (``grad_checkpointing=True``) of the ViT, text and MoME
towers, of CLIPPretrainer, of the fusion transformers and of the caption decoder.

Each test builds a tower twice with the same weights, one with checkpointing, runs the same
input in training mode (no dropout) and compares the loss and every parameter gradient. That
checkpointing is really on is seen from the first transformer block: a forward pre-hook on
it fires once per forward-backward without checkpointing and twice with it (the backward
pass recomputes the block; torch stops a recomputation once it has the saved tensors it
needs, so a hook after the block's forward would not fire again).
"""
import copy

import pytest
import torch
from mmengine.structures import BaseDataElement

from vlkd.registry import MODELS

TINY_VIT = dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16)
TINY_TEXT = dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=2)
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0)
CAPTIONS = ['a red star', 'a picture of a blue circle on the left']


def images(n=2, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def weighted_sum(*tensors):
    """A loss that reaches every output element with a different fixed weight."""
    total = 0
    for i, tensor in enumerate(tensors):
        weights = torch.randn(tensor.shape, generator=torch.Generator().manual_seed(i))
        total = total + (tensor * weights).sum()
    return total


def pair(cfg: dict, switch: str = 'grad_checkpointing'):
    """(tower without, tower with checkpointing), same weights, in training mode."""
    torch.manual_seed(0)
    plain = MODELS.build(cfg).train()
    checkpointed = MODELS.build({**cfg, switch: True}).train()
    checkpointed.load_state_dict(plain.state_dict())
    return plain, checkpointed


def run(model, first_block, step):
    """Loss of ``step(model)`` after its backward, its gradients, and the number of times
    ``first_block`` ran."""
    calls = []
    handle = first_block.register_forward_pre_hook(lambda *_: calls.append(1))
    model.zero_grad()
    loss = step(model)
    loss.backward()
    handle.remove()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()
             if p.grad is not None}  # parameters the step reaches (MoME: its experts)
    return loss.detach(), grads, len(calls)


def check_same_loss_and_gradients(plain, checkpointed, block_of, step):
    loss, grads, calls = run(plain, block_of(plain), step)
    loss_ckpt, grads_ckpt, calls_ckpt = run(checkpointed, block_of(checkpointed), step)
    assert (calls, calls_ckpt) == (1, 2)
    torch.testing.assert_close(loss_ckpt, loss, rtol=1e-6, atol=1e-6)
    assert grads and grads_ckpt.keys() == grads.keys()
    assert all(g.abs().sum() > 0 for g in grads.values() if g.numel() > 1)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_open_clip_vit_patch_encoder():
    plain, ckpt = pair(dict(type='ViTPatchEncoder', vision_cfg=TINY_VIT, embed_dim=16))
    x = images()
    check_same_loss_and_gradients(
        plain, ckpt, lambda m: m.vit.transformer.resblocks[0],
        lambda m: weighted_sum(*(lambda o: (o.tokens, o.embedding))(m(x))))


def test_timm_vit_patch_encoder():
    plain, ckpt = pair(dict(type='ViTPatchEncoder', timm_model='vit_tiny_patch16_224',
                            timm_kwargs=dict(img_size=32, patch_size=8, depth=2, embed_dim=32,
                                             num_heads=2)))
    x = images()
    check_same_loss_and_gradients(plain, ckpt, lambda m: m.vit.blocks[0],
                                  lambda m: weighted_sum(m(x).tokens))


def test_bert_text_encoder():
    plain, ckpt = pair(dict(type='BertTextEncoder', bert_cfg=TINY_BERT, max_length=16))
    tokens = plain.tokenize(CAPTIONS)
    # transformers checkpoints the layer's forward(), inside its hooks: watch a submodule
    check_same_loss_and_gradients(plain, ckpt, lambda m: m.bert.encoder.layer[0].attention,
                                  lambda m: weighted_sum(m(**tokens).tokens))


def test_bert_checkpointing_is_off_in_eval_mode():
    """transformers checkpoints only in training mode: evaluation runs each layer once."""
    _, ckpt = pair(dict(type='BertTextEncoder', bert_cfg=TINY_BERT, max_length=16))
    ckpt.eval()
    tokens = ckpt.tokenize(CAPTIONS)
    _, _, calls = run(ckpt, ckpt.bert.encoder.layer[0].attention,
                      lambda m: weighted_sum(m(**tokens).tokens))
    assert calls == 1


def test_open_clip_text_encoder():
    plain, ckpt = pair(dict(type='CLIPTextEncoder', text_cfg=TINY_TEXT, embed_dim=16))
    tokens = plain.tokenize(CAPTIONS)
    check_same_loss_and_gradients(
        plain, ckpt, lambda m: m.text.transformer.resblocks[0],
        lambda m: weighted_sum(*(lambda o: (o.tokens, o.embedding))(m(**tokens))))


@pytest.mark.parametrize('tower', ['image', 'text'])
def test_clip_pretrainer_itc_loss(tower):
    """The open_clip CLIP of CLIPPretrainer: the ITC loss and every gradient (both towers,
    the logit scale), and each tower's blocks recomputed."""
    cfg = dict(type='CLIPPretrainer',
               model_cfg=dict(embed_dim=16, vision_cfg=TINY_VIT, text_cfg=TINY_TEXT))
    plain, ckpt = pair(cfg)
    batch = plain.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8,
                              generator=torch.Generator().manual_seed(i)) for i in range(2)],
        data_samples=[BaseDataElement(text=text) for text in CAPTIONS]), training=True)
    blocks = {'image': lambda m: m.clip.visual.transformer.resblocks[0],
              'text': lambda m: m.clip.transformer.resblocks[0]}
    check_same_loss_and_gradients(plain, ckpt, blocks[tower],
                                  lambda m: m(**copy.copy(batch), mode='loss')['loss_itc'])


@pytest.mark.parametrize('mode', ['image', 'text', 'fuse'])
def test_mome_transformer(mode):
    cfg = dict(type='MoMETransformer', image_size=32, patch_size=8, vocab_size=100,
               max_text_length=8, width=32, depth=2, num_heads=2, num_vl_layers=1)
    plain, ckpt = pair(cfg)
    x = images()
    ids = torch.randint(1, 100, (2, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    forward = {'image': lambda m: weighted_sum(m.encode_image(x).tokens),
               'text': lambda m: weighted_sum(m.encode_text(ids, mask).tokens),
               'fuse': lambda m: weighted_sum(*(lambda o: (o.text_tokens, o.image_tokens))(
                   m.fuse(x, ids, mask)))}
    check_same_loss_and_gradients(plain, ckpt, lambda m: m.blocks[0], forward[mode])


def test_mome_runs_blocks_once_without_gradients():
    _, ckpt = pair(dict(type='MoMETransformer', image_size=32, patch_size=8, vocab_size=100,
                        width=32, depth=1, num_heads=2, num_vl_layers=1))
    calls = []
    ckpt.blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        ckpt.encode_image(images())
    assert len(calls) == 1


def test_benchmark_tool_reports_less_memory_held_with_checkpointing(capsys):
    import importlib.util
    import re
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / 'tools' / 'benchmark_grad_checkpointing.py'
    spec = importlib.util.spec_from_file_location('benchmark_grad_checkpointing', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--tower', 'vit', '--batch-size', '4', '--steps', '1'])
    held = {flag: int(mib) for flag, mib in re.findall(
        r'grad_checkpointing=(\w+)\s*: held for backward (\d+) MiB', capsys.readouterr().out)}
    # 6 blocks' activations against one block input each
    assert held['True'] * 4 < held['False']


def fusion_inputs():
    generator = torch.Generator().manual_seed(2)
    text = torch.randn(2, 6, 32, generator=generator)
    image = torch.randn(2, 5, 24, generator=generator)
    text_mask = torch.ones(2, 6, dtype=torch.bool)
    text_mask[0, 4:] = False
    return text, text_mask, image


@pytest.mark.parametrize('cfg, block, outputs', [
    (dict(type='CrossAttentionFusion', text_dim=32, image_dim=24),
     lambda m: m.blocks[0], lambda o: (o.text_tokens,)),
    (dict(type='SingleStreamFusion', text_dim=32, image_dim=24),
     lambda m: m.blocks[0], lambda o: (o.text_tokens, o.image_tokens)),
    (dict(type='CoAttentionFusion', text_dim=32, image_dim=24),
     lambda m: m.layers[0], lambda o: (o.text_tokens, o.image_tokens)),
], ids=['cross_attention', 'single_stream', 'co_attention'])
def test_fusion_transformers(cfg, block, outputs):
    plain, ckpt = pair(dict(cfg, width=16, depth=2, num_heads=2))
    text, text_mask, image = fusion_inputs()
    check_same_loss_and_gradients(
        plain, ckpt, block, lambda m: weighted_sum(*outputs(m(text, text_mask, image))))


def test_transformer_decoder():
    plain, ckpt = pair(dict(type='TransformerDecoder', vocab_size=50, width=16, depth=2,
                            num_heads=2, memory_dim=24))
    _, _, memory = fusion_inputs()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(3))
    check_same_loss_and_gradients(plain, ckpt, lambda m: m.blocks[0],
                                  lambda m: weighted_sum(m(ids, memory)))
