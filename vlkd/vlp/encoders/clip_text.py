"""The open_clip text tower as an encoder: token features and the EOT-pooled feature."""
from typing import Dict, Optional, Sequence

import open_clip
from open_clip.transformer import text_global_pool
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import _plain
from .output import EncoderOutput
from .tokenization import CLIPBPETokenizer
from .tower import TowerEncoder, load_weights

# keys of a whole open_clip CLIP state dict that are not part of its text tower
_NOT_TEXT = ('visual.', 'logit_scale', 'logit_bias')


@MODELS.register_module()
class CLIPTextEncoder(TowerEncoder):
    """An open_clip ``TextTransformer`` (causal attention, CLIP BPE tokens).

    ``tokens`` are the final-LayerNorm outputs (B, L, width), ``cls`` the feature of the
    end-of-text token (B, width) and ``embedding`` its projection (B, embed_dim): exactly
    open_clip's ``CLIP.encode_text``.

    Args:
        text_cfg: open_clip text config, as ``model_cfg['text_cfg']`` of
            :class:`vlkd.vlp.CLIPPretrainer` (``context_length``, ``vocab_size``, ``width``,
            ``heads``, ``layers``, ...).
        embed_dim: output dimension of the text projection.
        quick_gelu: QuickGELU activations (OpenAI CLIP weights).
        pretrained: local weights: an open_clip CLIP state dict or checkpoint, or a
            ``CLIPPretrainer`` checkpoint with ``prefix='clip.'``.
        prefix: key prefix of the text tower in ``pretrained`` (keys of the image tower and
            the logit scale are skipped).
        frozen: freeze the tower.
        grad_checkpointing: recompute each transformer block's activations in the backward
            pass instead of storing them (less memory, more time; same outputs and gradients).
    """

    def __init__(self, text_cfg: dict, embed_dim: int, quick_gelu: bool = False,
                 pretrained: Optional[str] = None, prefix: str = '', frozen: bool = False,
                 grad_checkpointing: bool = False):
        super().__init__()
        text_cfg = _plain(text_cfg)
        if text_cfg.get('hf_model_name') or text_cfg.get('embed_cls'):
            raise ValueError('CLIPTextEncoder wraps the open_clip TextTransformer; for a '
                             'Hugging Face text tower use BertTextEncoder, CoCa-style '
                             'embed_cls towers are not supported.')
        self.text = open_clip.model._build_text_tower(embed_dim, text_cfg, quick_gelu=quick_gelu)
        self.text.output_tokens = True
        if pretrained is not None:
            load_weights(self.text, pretrained, prefix=prefix, ignore=_NOT_TEXT)
        self.tokenizer = CLIPBPETokenizer(self.text.context_length)
        if self.tokenizer.vocab_size > self.text.vocab_size:
            raise ValueError(f'text_cfg.vocab_size={self.text.vocab_size} is smaller than the '
                             f'CLIP BPE vocabulary ({self.tokenizer.vocab_size}).')
        self.width = self.text.width
        self.embed_dim = embed_dim
        if frozen:
            self.freeze('text')
        self.text.set_grad_checkpointing(grad_checkpointing)

    def tokenize(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """``dict(input_ids, attention_mask)`` (N, context_length) on the encoder's device."""
        device = self.text.token_embedding.weight.device
        return {k: v.to(device) for k, v in self.tokenizer(texts).items()}

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None
                ) -> EncoderOutput:
        """CLIP token ids (B, L), zero padded -> :class:`EncoderOutput`. ``attention_mask``
        defaults to ``input_ids != 0``; the causal attention never looks at later tokens, so
        padding does not change the valid tokens' features."""
        if input_ids.dim() != 2 or input_ids.shape[1] > self.text.context_length:
            raise ValueError(f'input_ids must be (B, L) with L <= {self.text.context_length}, '
                             f'got {tuple(input_ids.shape)}.')
        if attention_mask is None:
            attention_mask = input_ids != self.tokenizer.pad_token_id
        embedding, tokens = self.text(input_ids)
        cls = text_global_pool(tokens, input_ids, pool_type=self.text.pool_type,
                               eos_token_id=self.text.eos_id)
        return EncoderOutput(tokens=tokens, mask=attention_mask.bool(), cls=cls,
                             embedding=embedding, input_ids=input_ids)

    def encode(self, texts: Sequence[str]) -> EncoderOutput:
        """Tokenize and encode captions."""
        return self(**self.tokenize(texts))
