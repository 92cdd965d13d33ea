"""BertTextEncoder: embeddings against the BERT formula, the layer split against a full
transformers BertModel, padding invariance, freezing."""
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from vlkd.registry import MODELS
from vlkd.vlp.encoders import BertTextEncoder

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def test_output_contract():
    torch.manual_seed(0)
    encoder = MODELS.build(dict(type='BertTextEncoder', bert_cfg=TINY_BERT, max_length=16))
    out = encoder.encode(['a red circle', 'two blue squares above a small star'])
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == encoder.width == 32
    assert out.mask.dtype == torch.bool and out.mask.shape == out.tokens.shape[:2]
    assert out.mask[0].sum() == 5 and out.mask[1].all()
    assert torch.equal(out.cls, out.tokens[:, 0])
    assert (out.input_ids[:, 0] == encoder.tokenizer.cls_token_id).all()


def test_embeddings_are_word_plus_position_plus_type():
    """num_layers=0: tokens = LayerNorm(word[id] + position[i] + type[t])."""
    torch.manual_seed(0)
    encoder = BertTextEncoder(bert_cfg=TINY_BERT, num_layers=0, token_type=1)
    tokens = encoder.tokenize(['a red circle'])
    out = encoder(**tokens)
    emb = encoder.bert.embeddings
    ids = tokens['input_ids'][0]
    expected = emb.word_embeddings.weight[ids] + emb.position_embeddings.weight[:len(ids)] \
        + emb.token_type_embeddings.weight[1]
    expected = F.layer_norm(expected, (32,), emb.LayerNorm.weight, emb.LayerNorm.bias, 1e-12)
    torch.testing.assert_close(out.tokens[0], expected)
    # an explicit token type per token (modality id) overrides the default
    other = encoder(**tokens, token_type_ids=torch.zeros_like(tokens['input_ids']))
    assert not torch.allclose(other.tokens, out.tokens)


def test_num_layers_runs_the_first_layers_of_the_bert():
    torch.manual_seed(0)
    full = BertModel(BertConfig(vocab_size=30522, **TINY_BERT), add_pooling_layer=False).eval()
    encoder = BertTextEncoder(bert_cfg=TINY_BERT, num_layers=1).eval()
    missing, unexpected = encoder.bert.load_state_dict(full.state_dict(), strict=False)
    assert not missing and all(k.startswith('encoder.layer.1.') for k in unexpected)
    assert len(encoder.bert.encoder.layer) == 1
    tokens = encoder.tokenize(['a red circle', 'a star'])
    hidden = full(input_ids=tokens['input_ids'], attention_mask=tokens['attention_mask'].long(),
                  output_hidden_states=True).hidden_states
    out = encoder(**tokens)
    valid = tokens['attention_mask']
    torch.testing.assert_close(out.tokens[valid], hidden[1][valid])
    with pytest.raises(ValueError, match='num_layers'):
        BertTextEncoder(bert_cfg=TINY_BERT, num_layers=3)


def test_padding_does_not_change_valid_tokens():
    torch.manual_seed(0)
    encoder = BertTextEncoder(bert_cfg=TINY_BERT).eval()
    alone = encoder.encode(['a red circle'])
    batched = encoder.encode(['a red circle', 'two blue squares above a small star'])
    n = alone.tokens.shape[1]
    assert batched.tokens.shape[1] > n and not batched.mask[0, n:].any()
    torch.testing.assert_close(batched.tokens[0, :n], alone.tokens[0], atol=1e-5, rtol=1e-5)


def test_frozen_encoder_has_no_gradients_and_stays_in_eval():
    cfg = dict(TINY_BERT, hidden_dropout_prob=0.5)
    encoder = BertTextEncoder(bert_cfg=cfg, frozen=True)
    assert encoder.frozen and not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.bert.training
    a, b = encoder.encode(['a red circle']), encoder.encode(['a red circle'])
    assert torch.equal(a.tokens, b.tokens)  # dropout off
    trainable = BertTextEncoder(bert_cfg=cfg).train()
    a, b = trainable.encode(['a red circle']), trainable.encode(['a red circle'])
    assert not torch.equal(a.tokens, b.tokens)


def test_bad_arguments():
    with pytest.raises(ValueError, match='exactly one'):
        BertTextEncoder()
    with pytest.raises(ValueError, match='word embeddings'):
        BertTextEncoder(bert_cfg=dict(TINY_BERT, vocab_size=100))
    with pytest.raises(FileNotFoundError, match='config.json'):
        BertTextEncoder(pretrained='/nonexistent/bert')
    encoder = BertTextEncoder(bert_cfg=TINY_BERT)
    with pytest.raises(ValueError, match='Caption 0 is empty'):
        encoder.encode([''])
