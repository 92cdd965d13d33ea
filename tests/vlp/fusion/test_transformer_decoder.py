"""TransformerDecoder: causality, memory masks, tied / untied LM head, and greedy captioning
of a decoder that has learned two captions."""
import pytest
import torch
import torch.nn.functional as F

from vlkd.registry import MODELS
from vlkd.vlp.fusion import TransformerDecoder

VOCAB, BOS, EOS, PAD = 20, 1, 2, 0


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='TransformerDecoder', vocab_size=VOCAB, width=16, depth=2, num_heads=2,
               memory_dim=12, max_length=8, bos_token_id=BOS, eos_token_id=EOS,
               pad_token_id=PAD)
    return MODELS.build({**cfg, **kwargs}).eval()


def test_future_tokens_do_not_change_earlier_logits():
    decoder = build()
    ids = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(0))
    memory = torch.randn(2, 5, 12)
    logits = decoder(ids, memory)
    assert logits.shape == (2, 6, VOCAB)
    for t in range(1, 6):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % VOCAB
        new = decoder(changed, memory)
        torch.testing.assert_close(new[:, :t], logits[:, :t])
        assert not torch.allclose(new[:, t:], logits[:, t:])


def test_memory_and_target_padding_masks():
    decoder = build()
    ids = torch.randint(3, VOCAB, (1, 5), generator=torch.Generator().manual_seed(1))
    memory = torch.randn(1, 4, 12)
    memory_mask = torch.tensor([[True, True, True, False]])
    logits = decoder(ids, memory, memory_mask)
    other = memory.clone()
    other[0, 3] += torch.randn(12)
    torch.testing.assert_close(decoder(ids, other, memory_mask), logits)
    other[0, 0] += torch.randn(12)
    assert not torch.allclose(decoder(ids, other, memory_mask), logits)
    # padding the target at the end leaves the valid positions' logits unchanged
    padded = torch.cat([ids, torch.full((1, 2), PAD)], 1)
    mask = torch.tensor([[True] * 5 + [False] * 2])
    torch.testing.assert_close(decoder(padded, memory, memory_mask, mask)[:, :5], logits)


def test_tied_and_untied_heads():
    tied, untied = build(), build(tie_weights=False)
    assert tied.lm_head.weight is tied.token_embedding.weight
    assert untied.lm_head.weight is not untied.token_embedding.weight
    assert len(list(untied.parameters())) == len(list(tied.parameters())) + 1


def test_greedy_generation_reproduces_learned_captions():
    decoder = build(depth=1).train()
    memories = torch.randn(2, 3, 12, generator=torch.Generator().manual_seed(2))
    captions = torch.tensor([[BOS, 5, 6, 7, EOS, PAD], [BOS, 8, 9, EOS, PAD, PAD]])
    mask = captions != PAD
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(150):
        logits = decoder(captions[:, :-1], memories, attention_mask=mask[:, :-1])
        targets = captions[:, 1:].masked_fill(~mask[:, 1:], -100)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    generated = decoder.generate(memories, max_new_tokens=6)
    assert generated[0, :4].tolist() == [5, 6, 7, EOS]
    assert generated[1, :3].tolist() == [8, 9, EOS]
    assert (generated[1, 3:] == PAD).all()  # padded after its end token
    assert generated.shape[1] == 4  # stops once every caption has ended


def test_bad_inputs():
    decoder = build()
    with pytest.raises(ValueError, match='max_length=8'):
        decoder(torch.zeros(1, 9, dtype=torch.long), torch.randn(1, 2, 12))
    with pytest.raises(ValueError, match='1 target sequences but 2 memories'):
        decoder(torch.zeros(1, 3, dtype=torch.long), torch.randn(2, 2, 12))
    with pytest.raises(ValueError, match='At most max_length - 1'):
        decoder.generate(torch.randn(1, 2, 12), max_new_tokens=8)
