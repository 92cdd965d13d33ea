"""GLIP's detection prompt: class names as one sentence, encoded token by token.

GLIP (Li et al., 2022, "Grounded Language-Image Pre-training") turns a detector's class list
into a text prompt, ``"circle. square. triangle."``, and classifies regions by their
alignment with the prompt's tokens: class ``c`` is the phrase of its name, i.e. the tokens
whose characters overlap the name's character span. A prompt longer than the text tower's
context is split into consecutive chunks of whole class names (as GLIP does for long
vocabularies), each encoded alone; their word tokens are concatenated.

Two text encoders give the token features (:func:`build_prompt_encoder` picks by config):

- :class:`ClassPromptEncoder`: a frozen teacher's open_clip text tower (the quickstart
  teacher, vlkd CLIP checkpoints, :class:`OpenCLIPTeacher`): each token's output of the final
  layer norm through the tower's projection to the joint space (the end-of-text token's feature
  is the teacher's pooled text embedding). CLIP trains only the end-of-text token, and its
  tower is causal: the other tokens' features can be nearly alike (see configs/glip/README.md).
- :class:`BertPromptEncoder`: a BERT text encoder of the VLP core
  (:class:`~vlkd.vlp.encoders.BertTextEncoder`, e.g. the pretrained MiniLM-L6,
  ``MiniLMTextEncoder``), bidirectional, every token trained: GLIP's own choice of a BERT
  language model, frozen here.

Special tokens (start / end of text, [CLS] / [SEP], padding) are dropped; the ``'.'``
separators are kept, as in GLIP, and belong to no class.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from vlkd.prompt.backbones import OpenCLIPBackbone, prompt_backbone
from vlkd.registry import MODELS
from vlkd.teachers import Teacher
from vlkd.vlp.encoders import BertTextEncoder
from vlkd.vlp.objectives import positive_map_from_char_spans


def detection_prompt(classes: Sequence[str]) -> Tuple[str, List[Tuple[int, int]]]:
    """The prompt ``"name_1. name_2. ... name_C."`` and each name's (start, end) characters."""
    spans, start = [], 0
    for name in classes:
        spans.append((start, start + len(name)))
        start += len(name) + 2  # '. '
    return '. '.join(classes) + '.', spans


class PromptTooLong(ValueError):
    """A text longer than the encoder's context (its tokenizer truncated it)."""


class PromptEncoder:
    """Token features (L, D) of class prompts from a frozen text encoder, and the (C, L) map
    of each class's tokens. Subclasses give ``context_length`` (tokens per sequence, special
    ones included), :meth:`tokenize` and :meth:`word_features`."""

    context_length: int

    def tokenize(self, text: str) -> Tuple[Tensor, Tensor]:
        """Ids (n,) of ``text``'s tokens without special tokens, and their (n, 2) character
        spans in ``text``."""
        raise NotImplementedError

    def word_features(self, words: Tensor) -> Tensor:
        """Features (n, D) of the tokens ``words`` (n,) encoded as one sequence with the
        encoder's special tokens (which are dropped from the output)."""
        raise NotImplementedError

    def _fits(self, classes: Sequence[str]) -> bool:
        """Whether the prompt of ``classes`` fits the context with start and end of text."""
        try:
            words, _ = self.tokenize(detection_prompt(classes)[0])
        except PromptTooLong:
            return False
        return len(words) + 2 <= self.context_length

    def encode(self, classes: Sequence[str]) -> Tuple[Tensor, Tensor]:
        """Token features (L, D) of the prompt of ``classes`` (chunked to fit the context),
        and the (C, L) bool map of each class's tokens (:func:`positive_map_from_char_spans`).
        """
        if not classes:
            raise ValueError('A GLIP prompt needs at least one class name.')
        chunks, current = [], []
        for name in classes:
            if current and self._fits(current + [name]):
                current.append(name)
                continue
            if current:
                chunks.append(current)
            if not self._fits([name]):
                raise ValueError(f'The class name {name!r} alone does not fit the text '
                                 f'tower\'s context of {self.context_length} tokens.')
            current = [name]
        chunks.append(current)
        features, maps = [], []
        for chunk in chunks:
            prompt, spans = detection_prompt(chunk)
            words, offsets = self.tokenize(prompt)
            features.append(self.word_features(words).float().cpu())
            maps.append(positive_map_from_char_spans([[span] for span in spans], offsets))
        return torch.cat(features), torch.block_diag(*maps).bool()


class ClassPromptEncoder(PromptEncoder):
    """Token features of class prompts from a teacher's open_clip text tower (frozen).

    Args:
        teacher: a :class:`vlkd.teachers.Teacher` around an open_clip ``CLIP`` with the CLIP
            BPE tokenizer (``SimpleTokenizer``).
    """

    def __init__(self, teacher) -> None:
        backbone = prompt_backbone(teacher)
        tokenizer = getattr(teacher, 'tokenizer', None)
        if not (isinstance(backbone, OpenCLIPBackbone) and backbone.has_text_tokens
                and all(hasattr(tokenizer, name) for name in ('pat', 'bpe', 'clean_fn'))):
            raise TypeError(
                f'GLIP prompts need the token features of an open_clip CLIP text tower with '
                f'the CLIP BPE tokenizer; {type(teacher).__name__} holds '
                f'{type(getattr(teacher, "model", None)).__name__} with tokenizer '
                f'{type(tokenizer).__name__}.')
        self.teacher = teacher
        self.model, self.tokenizer = backbone.model, tokenizer
        self.context_length = backbone.context_length
        self.bos_id, self.eos_id = backbone.bos_id, backbone.eos_id

    def tokenize(self, text: str) -> Tuple[Tensor, Tensor]:
        """Word-piece ids (n,) of ``text`` without special tokens, and their (n, 2) character
        spans in ``text``: every BPE piece of a word spans the whole word."""
        cleaned = self.tokenizer.clean_fn(text)
        if cleaned != text.lower():
            raise ValueError(f'The prompt {text!r} changes under the tokenizer\'s cleaning '
                             f'({cleaned!r}): class names must be single-spaced plain text.')
        ids, offsets = [], []
        for match in self.tokenizer.pat.finditer(cleaned):
            word = ''.join(self.tokenizer.byte_encoder[b] for b in match.group().encode('utf-8'))
            for piece in self.tokenizer.bpe(word).split(' '):
                ids.append(self.tokenizer.encoder[piece])
                offsets.append(match.span())
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    @torch.no_grad()
    def token_features(self, ids: Tensor) -> Tensor:
        """Joint-space features (N, L, D) of every token of the id sequences (N, L) (start
        and end of text included); the end-of-text token's is the pooled text embedding."""
        model = self.model
        dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(ids).to(dtype) + model.positional_embedding.to(dtype)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask))
        projection = model.text_projection
        if projection is None:
            return x.float()
        return (projection(x) if isinstance(projection, nn.Linear) else x @ projection).float()

    def word_features(self, words: Tensor) -> Tensor:
        ids = torch.zeros(1, self.context_length, dtype=torch.long)
        ids[0, :len(words) + 2] = torch.cat([words.new_tensor([self.bos_id]), words,
                                             words.new_tensor([self.eos_id])])
        return self.token_features(ids.to(self.teacher.device))[0, 1:len(words) + 1]


class BertPromptEncoder(PromptEncoder):
    """Token features of class prompts from a BERT text encoder of the VLP core (frozen):
    the last layer's output of every WordPiece token, [CLS] and [SEP] dropped.

    Args:
        encoder: a :class:`~vlkd.vlp.encoders.BertTextEncoder` (its tokenizer's
            ``max_length`` is the context).
    """

    def __init__(self, encoder: BertTextEncoder) -> None:
        self.encoder = encoder.eval().requires_grad_(False)
        self.tokenizer = encoder.tokenizer
        self.context_length = self.tokenizer.max_length

    def tokenize(self, text: str) -> Tuple[Tensor, Tensor]:
        """WordPiece ids (n,) and (n, 2) character spans: each piece is found in the
        lower-cased text after the previous one (``'##'`` marks a word's continuation)."""
        ids = self.tokenizer([text])['input_ids'][0].tolist()
        special = set(self.tokenizer.special_token_ids)
        words = [i for i in ids if i not in special]
        lowered, offsets, cursor = text.lower(), [], 0
        for piece in self.tokenizer.decode(words):
            piece = piece[2:] if piece.startswith('##') else piece
            start = lowered.find(piece, cursor)
            if start < 0:
                raise ValueError(f'The WordPiece token {piece!r} of {text!r} is not found in '
                                 'the text: class names must be plain lower-case text.')
            offsets.append((start, start + len(piece)))
            cursor = start + len(piece)
        if lowered[cursor:].strip():
            raise PromptTooLong(f'{text!r} does not fit the context of {self.context_length} '
                                'tokens.')
        return torch.tensor(words, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    @torch.no_grad()
    def word_features(self, words: Tensor) -> Tensor:
        ids = torch.cat([words.new_tensor([self.tokenizer.cls_token_id]), words,
                         words.new_tensor([self.tokenizer.sep_token_id])])[None]
        device = self.encoder.bert.embeddings.word_embeddings.weight.device
        output = self.encoder(ids.to(device), torch.ones_like(ids, dtype=torch.bool,
                                                             device=device))
        return output.tokens[0, 1:-1]


def build_prompt_encoder(cfg) -> PromptEncoder:
    """The prompt encoder of a text encoder config: a teacher config (``VLKDTeacher``,
    ``OpenCLIPTeacher``, ...: its open_clip text tower) or a BERT text encoder config
    (``BertTextEncoder``, ``MiniLMTextEncoder``)."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f'text_encoder must be a config dict with a type, got {cfg!r}')
    module = MODELS.build({'_scope_': 'vlkd', **cfg})
    if isinstance(module, Teacher):
        return ClassPromptEncoder(module)
    if isinstance(module, BertTextEncoder):
        return BertPromptEncoder(module)
    raise TypeError(f"text_encoder type {cfg['type']!r} built a {type(module).__name__}; "
                    'GLIP prompts need a teacher with an open_clip CLIP text tower or a '
                    'BertTextEncoder.')
