"""Language-modelling tasks: masked language modelling (BERT, conditioned on the image) and
prefix language modelling (SimVLM) or captioning with a decoder.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from vlkd.registry import MODELS
from vlkd.vlp.encoders import BertTextEncoder
from vlkd.vlp.fusion import SingleStreamFusion
from vlkd.vlp.objectives import (MaskedLanguageModelingLoss, PrefixLanguageModelingLoss,
                                 prefix_lm_attention_mask, prefix_lm_labels,
                                 sample_prefix_lengths)
from vlkd.vlp.objectives.mlm import IGNORE_INDEX
from vlkd.vlp.views import TextView, VisualView
from .base import PretrainingStep, PretrainingTask


@MODELS.register_module()
class MaskedLanguageTask(PretrainingTask):
    """MLM: 15 % of the caption tokens masked (80/10/10), predicted from the fused text
    tokens (``with_image=True``) or from the text encoder alone (VLMo's text-only stage).

    With ``distill=True`` (ALBEF) the targets are mixed with the momentum model's token
    distribution on the same masked input, weight ``alpha`` of the model's momentum
    settings.

    Args:
        mask_prob: fraction of maskable tokens picked.
        with_image: condition on the image through the fusion module.
        distill: momentum distillation of the targets (needs the momentum model).
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, mask_prob: float = 0.15, with_image: bool = True,
                 distill: bool = False, weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        width = backbone.fusion_width if with_image else backbone.text_width
        if width is None:
            raise ValueError('MLM conditioned on the image needs a fusion module; set '
                             'with_image=False for text-only MLM.')
        self.mask_prob = mask_prob
        self.with_image = with_image
        self.distill = self.needs_momentum = distill
        self.loss = MaskedLanguageModelingLoss(width, backbone.vocab_size)

    def hidden_states(self, step: PretrainingStep, text: TextView) -> Tensor:
        """(B, L, H) outputs at the text positions of ``text`` (with the step's images)."""
        if self.with_image:
            return step.backbone.fuse(step.image, text).text_tokens
        return text.encoded.tokens

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        text, labels = step.masked_text(self.mask_prob)
        hidden = self.hidden_states(step, text)
        soft_targets = None
        if self.distill:
            with torch.no_grad():
                momentum = step.momentum
                twin = step.twin(self)
                momentum_hidden = twin.hidden_states(momentum,
                                                     momentum.text.with_ids(text.input_ids))
                soft_targets = twin.loss.predict(momentum_hidden, labels)[0].softmax(dim=-1)
        return dict(loss=self.loss(hidden, labels, soft_targets, step.alpha))


@MODELS.register_module()
class PrefixLanguageTask(PretrainingTask):
    """SimVLM's PrefixLM, or captioning with a decoder.

    Without ``decoder``: the visual tokens and the caption go through the single-stream
    fusion (``image_first=True``) under the prefix mask: bidirectional over the image and
    the first ``P`` text tokens (``P`` drawn per sample), causal over the rest, whose next
    tokens are predicted. The text encoder must not look ahead (BERT embeddings only,
    ``num_layers=0``, or the causal CLIP text tower).

    With ``decoder`` (a :class:`~vlkd.vlp.fusion.TransformerDecoder` config; vocabulary,
    memory width and special ids are filled in): the decoder generates the whole caption
    from the visual tokens (prefix = the image).

    Args:
        random_prefix: draw the text prefix length uniformly per sample (SimVLM); False:
            the prefix is the image alone.
        weight, stages: see :class:`PretrainingTask`.
    """

    def __init__(self, backbone, decoder: Optional[dict] = None, random_prefix: bool = True,
                 weight: float = 1.0, stages=None):
        super().__init__(weight, stages)
        self.random_prefix = random_prefix and decoder is None
        self.decoder = self.loss = None
        if decoder is not None:
            tokenizer = backbone.tokenizer
            self.decoder = MODELS.build(dict(
                dict(vocab_size=backbone.vocab_size, memory_dim=backbone.image_width,
                     bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                     pad_token_id=tokenizer.pad_token_id), **decoder))
            return
        fusion = getattr(backbone, 'fusion', None)
        if not isinstance(fusion, SingleStreamFusion) or not fusion.image_first:
            raise ValueError('PrefixLM without a decoder needs a SingleStreamFusion with '
                             'image_first=True (the prefix mask puts the image first).')
        text_encoder = backbone.text_encoder
        if isinstance(text_encoder, BertTextEncoder) and \
                text_encoder.bert.config.num_hidden_layers > 0:
            raise ValueError('PrefixLM needs text tokens that have not seen later tokens: use '
                             'BertTextEncoder(num_layers=0) (embeddings only) or the causal '
                             'CLIPTextEncoder.')
        self.loss = PrefixLanguageModelingLoss(backbone.fusion_width, backbone.vocab_size)

    def _prefix_hidden(self, backbone, image: VisualView, text: TextView,
                       prefix_lengths: Tensor) -> Tensor:
        encoded = image.encoded
        mask = prefix_lm_attention_mask(prefix_lengths, text.attention_mask,
                                        encoded.tokens.shape[1], encoded.mask)
        return backbone.fuse(image, text, attention_mask=mask).text_tokens

    def _logits_and_labels(self, backbone, image: VisualView, text: TextView,
                           prefix_lengths: Tensor):
        """Next-token logits (B, L, V) and labels (B, L), -100 off the suffix."""
        labels = prefix_lm_labels(text.input_ids, prefix_lengths, text.attention_mask)
        if self.decoder is not None:
            encoded = image.encoded
            logits = self.decoder(text.input_ids, encoded.tokens, encoded.mask,
                                  text.attention_mask)
        else:
            logits = self.loss.head(self._prefix_hidden(backbone, image, text, prefix_lengths))
        return logits, labels

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        text = step.text
        if self.random_prefix:
            prefix_lengths = sample_prefix_lengths(text.attention_mask)
        else:
            prefix_lengths = torch.zeros_like(text.input_ids[:, 0])
        if self.decoder is None:
            hidden = self._prefix_hidden(step.backbone, step.image, text, prefix_lengths)
            return dict(loss=self.loss(hidden, text.input_ids, prefix_lengths,
                                       text.attention_mask))
        logits, labels = self._logits_and_labels(step.backbone, step.image, text,
                                                 prefix_lengths)
        return dict(loss=F.cross_entropy(logits[labels != IGNORE_INDEX],
                                         labels[labels != IGNORE_INDEX]))

    def score_pairs(self, backbone, image: VisualView, text: TextView) -> Tensor:
        """(M,) mean log-likelihood per token of each caption given its image."""
        prefix_lengths = torch.zeros_like(text.input_ids[:, 0])
        logits, labels = self._logits_and_labels(backbone, image, text, prefix_lengths)
        targets = labels != IGNORE_INDEX
        log_probs = -F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0),
                                     reduction='none')
        return (log_probs * targets).sum(dim=1) / targets.sum(dim=1).clamp(min=1)
