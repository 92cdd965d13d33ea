"""GLIP's detection prompt: class names as one sentence, encoded token by token.

GLIP (Li et al., 2022, "Grounded Language-Image Pre-training") turns a detector's class list
into a text prompt, ``"circle. square. triangle."``, and classifies regions by their
alignment with the prompt's tokens: class ``c`` is the phrase of its name, i.e. the tokens
whose characters overlap the name's character span. A prompt longer than the text tower's
context is split into consecutive chunks of whole class names (as GLIP does for long
vocabularies), each encoded alone; their word tokens are concatenated.

:class:`ClassPromptEncoder` reads the token features of a frozen teacher's text tower (open_clip
CLIP towers: the quickstart teacher, vlkd CLIP checkpoints, :class:`OpenCLIPTeacher`): each
token's output of the final layer norm, through the tower's projection to the joint space
(the end-of-text token's feature is the teacher's pooled text embedding). Special tokens
(start / end of text, padding) are dropped; the ``'.'`` separators are kept, as in GLIP, and
belong to no class.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from vlkd.prompt.backbones import OpenCLIPBackbone, prompt_backbone
from vlkd.vlp.objectives import positive_map_from_char_spans


def detection_prompt(classes: Sequence[str]) -> Tuple[str, List[Tuple[int, int]]]:
    """The prompt ``"name_1. name_2. ... name_C."`` and each name's (start, end) characters."""
    spans, start = [], 0
    for name in classes:
        spans.append((start, start + len(name)))
        start += len(name) + 2  # '. '
    return '. '.join(classes) + '.', spans


class ClassPromptEncoder:
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

    def _fits(self, classes: Sequence[str]) -> bool:
        """Whether the prompt of ``classes`` fits the context with start and end of text."""
        return len(self.tokenize(detection_prompt(classes)[0])[0]) + 2 <= self.context_length

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
            ids = torch.zeros(1, self.context_length, dtype=torch.long)
            ids[0, :len(words) + 2] = torch.cat([words.new_tensor([self.bos_id]), words,
                                                 words.new_tensor([self.eos_id])])
            device = self.teacher.device
            features.append(self.token_features(ids.to(device))[0, 1:len(words) + 1].cpu())
            maps.append(positive_map_from_char_spans([[span] for span in spans], offsets))
        return torch.cat(features), torch.block_diag(*maps).bool()
