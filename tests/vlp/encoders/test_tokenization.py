"""Caption tokenizers against a WordPiece written here from the algorithm (greedy longest
match over the vocab file read by hand), Hugging Face's tokenizer of the MiniLM package, and
open_clip's own tokenize."""
import unicodedata

import open_clip
import pytest
import torch

from vlkd.vlp.encoders import CLIPBPETokenizer, WordPieceTokenizer, minilm_dir


def hand_wordpiece(text, vocab):
    """BERT uncased tokenisation from its description: lower-case, strip accents, split on
    whitespace and punctuation, then greedy longest-prefix match with '##' continuations."""
    text = ''.join(c for c in unicodedata.normalize('NFD', text.lower())
                   if unicodedata.category(c) != 'Mn')
    words = []
    for chunk in text.split():
        word = ''
        for char in chunk:
            if unicodedata.category(char).startswith('P'):
                words += [word, char] if word else [char]
                word = ''
            else:
                word += char
        if word:
            words.append(word)
    pieces = []
    for word in words:
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else '##' + word[start:end]
                if piece in vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                pieces.append('[UNK]')
                break
    return ['[CLS]'] + pieces + ['[SEP]']


@pytest.fixture(scope='module')
def vocab():
    lines = (minilm_dir() / 'vocab.txt').read_text(encoding='utf-8').splitlines()
    return {token: index for index, token in enumerate(lines)}


SENTENCES = ['A red Hexagon, left of two small crosses!', 'Café: the crescent & stars.']


def test_wordpiece_matches_the_hand_tokenisation(vocab):
    assert len(vocab) == 30522
    # the first sentence exercises word continuations ('hexagon' is split)
    assert any(p.startswith('##') for p in hand_wordpiece(SENTENCES[0], vocab))
    tokenizer = WordPieceTokenizer(max_length=32)
    out = tokenizer(SENTENCES)
    for row, sentence in enumerate(SENTENCES):
        pieces = hand_wordpiece(sentence, vocab)
        expected = [vocab[p] for p in pieces]
        n = len(expected)
        assert out['input_ids'][row, :n].tolist() == expected
        assert out['attention_mask'][row, :n].all()
        assert not out['attention_mask'][row, n:].any()
        assert (out['input_ids'][row, n:] == vocab['[PAD]']).all()
    assert tokenizer.cls_token_id == vocab['[CLS]'] == 101
    assert tokenizer.mask_token_id == vocab['[MASK]']


def test_wordpiece_agrees_with_the_packaged_hf_tokenizer():
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
    theirs = hf(SENTENCES, padding=True, return_tensors='pt')
    ours = WordPieceTokenizer(max_length=32)(SENTENCES)
    assert torch.equal(ours['input_ids'], theirs['input_ids'])
    assert torch.equal(ours['attention_mask'], theirs['attention_mask'].bool())


def test_truncation_keeps_sep_last(vocab):
    out = WordPieceTokenizer(max_length=5)(['one two three four five six'])
    assert out['input_ids'].shape == (1, 5)
    assert out['input_ids'][0].tolist() == [vocab[t] for t in
                                            ['[CLS]', 'one', 'two', 'three', '[SEP]']]


@pytest.mark.parametrize('make', [lambda: WordPieceTokenizer(), lambda: CLIPBPETokenizer(16)])
def test_empty_captions_are_named(make):
    tokenizer = make()
    with pytest.raises(ValueError, match=r'Caption 1 is empty'):
        tokenizer(['a red circle', '   '])
    with pytest.raises(TypeError, match=r'Caption 0 is a NoneType'):
        tokenizer([None])
    with pytest.raises(ValueError, match='No captions'):
        tokenizer([])
    with pytest.raises(TypeError, match='list of captions'):
        tokenizer('a red circle')


def test_clip_bpe_matches_open_clip():
    captions = ['a red circle', 'two blue squares above a star']
    out = CLIPBPETokenizer(context_length=16)(captions)
    expected = open_clip.tokenize(captions, context_length=16)
    assert torch.equal(out['input_ids'], expected.long())
    assert torch.equal(out['attention_mask'], expected != 0)


def test_bad_vocab_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        WordPieceTokenizer(tmp_path / 'missing.txt')
    (tmp_path / 'vocab.txt').write_text('a\nb\n')
    with pytest.raises(ValueError, match='lacks the special tokens'):
        WordPieceTokenizer(tmp_path / 'vocab.txt')
