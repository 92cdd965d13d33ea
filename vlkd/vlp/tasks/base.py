"""What every pretraining task shares: the task base class and the step it reads.

A :class:`PretrainingTask` wires one objective family of :mod:`vlkd.vlp.objectives` to a
backbone (:mod:`vlkd.vlp.backbone`): it sizes its heads from the backbone's widths when it
is built, and at every call turns a :class:`PretrainingStep` into named outputs. Outputs
whose name starts with ``loss`` are losses; the model weights and sums them.

A :class:`PretrainingStep` holds one batch (visual inputs, token ids, captions, labels)
and computes what tasks ask for at most once: unimodal encodings (through the
:class:`~vlkd.vlp.views.VisualView` / :class:`~vlkd.vlp.views.TextView`), joint-space
features and similarities, masked copies of the text or the visual units, the image-text
matching pairs and their fused outputs, and the same step on the momentum model. So
ALBEF's ITC, ITM and MLM share the unimodal towers; UNITER's MRFR and MRC share one fused
pass over masked regions; ITM and WRA share the fused matching pairs.
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from vlkd.vlp.fusion import FusionOutput
from vlkd.vlp.objectives import mask_tokens, mask_visual_tokens, matching_pairs, \
    sample_negatives
from vlkd.vlp.objectives.distributed import gather_no_grad, gather_objects, world
from vlkd.vlp.objectives.itm import negative_mode
from vlkd.vlp.views import TextView, Visual, VisualView


class MatchingPairs(NamedTuple):
    """The 3N image-text matching pairs of a batch (see
    :func:`vlkd.vlp.objectives.matching_pairs`) and their fused outputs. Under
    torch.distributed the indices are rows of the global batch (every process's rows in
    rank order)."""

    image_index: Tensor
    text_index: Tensor
    is_match: Tensor
    image: VisualView
    text: TextView
    fused: FusionOutput


class PretrainingStep:
    """One batch and the forward passes its tasks ask for, each computed once.

    Args:
        parts: the module holding ``backbone`` and ``tasks`` (the online model, or the
            momentum copy of both).
        visual: images (B, 3, S, S), a RegionBatch or a VideoBatch.
        text: ``dict(input_ids, attention_mask)`` (B, L) of the captions.
        texts: the B captions (pairs with equal captions are positives of each other).
        labels: (B,) labels, equal for pairs that match each other (a class, an image), -1
            where a sample has none; or None.
        alpha: momentum distillation weight of this step.
        joint_space: name of the task that defines the joint embedding space, if any.
        momentum_parts: the momentum copy of ``parts``, if the model has one.
        samples: the batch's data samples, for tasks that read more of them.
    """

    def __init__(self, parts: nn.Module, visual: Visual, text: Dict[str, Tensor],
                 texts: Sequence[str], labels: Optional[Tensor] = None, alpha: float = 0.0,
                 joint_space: Optional[str] = None,
                 momentum_parts: Optional[nn.Module] = None, samples: Sequence = ()):
        self.backbone = parts.backbone
        self.tasks = parts.tasks
        self.image = VisualView(self.backbone, visual)
        self.text = TextView(self.backbone, text['input_ids'], text['attention_mask'])
        if len(self.image) != len(self.text):
            raise ValueError(f'{len(self.image)} visual inputs but {len(self.text)} captions.')
        self.texts = list(texts)
        self.samples = list(samples)
        self.labels = labels
        self.alpha = alpha
        self.joint_space = joint_space
        self._momentum_parts = momentum_parts
        self._momentum = None
        self._cache: dict = {}

    def __len__(self) -> int:
        return len(self.text)

    def cached(self, key, compute: Callable):
        """``compute()``, run on the first call with ``key`` only."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # -- the momentum model ------------------------------------------------------------
    @property
    def momentum(self) -> 'PretrainingStep':
        """This batch on the momentum copy of the backbone and tasks (run it under
        ``torch.no_grad()``)."""
        if self._momentum_parts is None:
            raise ValueError('This objective needs the momentum model: configure the model '
                             'with momentum=dict(momentum=0.995, alpha=0.4, ...).')
        if self._momentum is None:
            self._momentum = PretrainingStep(
                self._momentum_parts, self.image.inputs,
                dict(input_ids=self.text.input_ids, attention_mask=self.text.attention_mask),
                self.texts, self.labels, self.alpha, self.joint_space, samples=self.samples)
        return self._momentum

    def twin(self, task: 'PretrainingTask') -> 'PretrainingTask':
        """The momentum copy of ``task``."""
        return self.momentum.tasks[task.name]

    # -- the joint embedding space -----------------------------------------------------
    def joint_features(self):
        """(image (B, E), text (B, E)) unnormalised features in the joint space."""
        def compute():
            if self.joint_space is None:
                raise ValueError('This model has no joint embedding space: it needs a '
                                 'contrastive objective (ITC, FDT, UniCL).')
            task = self.tasks[self.joint_space]
            return task.embed_image(self.image.encoded), task.embed_text(self.text.encoded)
        return self.cached('joint_features', compute)

    def similarity(self) -> Tensor:
        """(B, B) scaled cosine similarities of images (rows) and texts, no gradient."""
        return self.cached('similarity',
                           lambda: self._scaled_cosine(*self.joint_features()))

    def _scaled_cosine(self, image: Tensor, text: Tensor) -> Tensor:
        """The joint-space task's scale times the cosine similarities, no gradient."""
        image = nn.functional.normalize(image.detach(), dim=-1)
        text = nn.functional.normalize(text.detach(), dim=-1)
        return self.tasks[self.joint_space].logit_scale.detach().exp() * image @ text.T

    # -- who matches whom --------------------------------------------------------------
    def positive_mask(self) -> Tensor:
        """(B, B) bool: pair ``i``'s image matches caption ``j`` (the same caption, or the
        same label)."""
        return self.cached('positive_mask',
                           lambda: positive_pairs(self.texts, self.labels,
                                                  self.text.input_ids.device))

    def pair_labels(self) -> Tensor:
        """(B,) labels for image-text-label contrast: the pair's label, or for an unlabelled
        pair a negative id of its own (unique across processes)."""
        n, device = len(self), self.text.input_ids.device
        own = -1 - (world()[0] * n + torch.arange(n, device=device))
        if self.labels is None:
            return own
        return torch.where(self.labels >= 0, self.labels, own)

    # -- masked inputs -----------------------------------------------------------------
    def masked_text(self, mask_prob: float):
        """(masked TextView, labels (B, L)): BERT masking of the captions, the same for
        every task asking with ``mask_prob`` (and for the momentum model)."""
        def compute():
            tokenizer = self.backbone.tokenizer
            if not hasattr(tokenizer, 'mask_token_id'):
                raise ValueError(f'Masked language modelling needs a tokenizer with a [MASK] '
                                 f'token; {type(tokenizer).__name__} has none (use a '
                                 'BertTextEncoder or MoMEBackbone).')
            ids, labels = mask_tokens(self.text.input_ids, tokenizer.mask_token_id,
                                      tokenizer.vocab_size, tokenizer.special_token_ids,
                                      self.text.attention_mask, mask_prob=mask_prob)
            return self.text.with_ids(ids), labels
        return self.cached(('masked_text', mask_prob), compute)

    def masked_units(self, mask_ratio: float):
        """(masked VisualView, unit mask (B, N) bool): ``mask_ratio`` of every sample's
        patches or regions masked, the same for every task asking with that ratio."""
        def compute():
            valid = self.backbone.unit_valid_mask(self.image.inputs)
            mask = mask_visual_tokens(valid, mask_ratio)
            return self.image.masked(mask), mask
        return self.cached(('masked_units', mask_ratio), compute)

    # -- image-text matching pairs -----------------------------------------------------
    def matching(self, hard_negatives: Union[bool, str]) -> MatchingPairs:
        """The N positive and 2N negative pairs and their fused outputs.

        Negatives (see :func:`~vlkd.vlp.objectives.sample_negatives`) are ALBEF's hard
        negatives drawn from the joint-space similarities, the hardest ones, or uniform
        among non-positives. Under torch.distributed they come from the whole global batch:
        the similarities, captions and labels of every process are gathered, and so are the
        unimodal encodings (with their gradient) that the negative pairs fuse.
        """
        def compute():
            rank, world_size = world()
            if len(self) * world_size < 2:
                raise ValueError('Image-text matching needs at least 2 pairs per batch.')
            texts, labels = self.texts, self.labels
            if world_size > 1:
                texts = gather_objects(texts)
                labels = None if labels is None else gather_no_grad(labels)
            positive = positive_pairs(texts, labels, self.text.input_ids.device)
            # a sample that matches the whole batch keeps only its own pair as positive
            lonely = positive.all(dim=1) | positive.all(dim=0)
            positive = torch.where(lonely[:, None] | lonely[None, :],
                                   torch.eye(len(texts), dtype=torch.bool,
                                             device=positive.device), positive)
            mode = negative_mode(hard_negatives)
            scores = self.global_similarity() if mode != 'uniform' else \
                positive.new_zeros(positive.shape, dtype=torch.float)
            negative_text, negative_image = sample_negatives(scores, positive, hard=mode)
            own = rank * len(self) + torch.arange(len(self), device=positive.device)
            # this process's pairs are rows ``own`` of the global batch; their negative
            # partners may come from any process
            image_index, text_index, is_match = matching_pairs(
                negative_text[own], negative_image[own], rows=own)
            image_pool, text_pool = (self.image, self.text) if world_size == 1 else \
                (self.image.gathered(), self.text.gathered())
            image, text = image_pool.select(image_index), text_pool.select(text_index)
            fused = self.backbone.fuse(image, text)
            return MatchingPairs(image_index, text_index, is_match, image, text, fused)
        return self.cached(('matching', hard_negatives), compute)

    def global_similarity(self) -> Tensor:
        """(W*B, W*B) scaled cosine similarities of the images and texts of every process
        (rank order), no gradient; :meth:`similarity` without torch.distributed."""
        def compute():
            if world()[1] == 1:
                return self.similarity()
            return self._scaled_cosine(*(gather_no_grad(f) for f in self.joint_features()))
        return self.cached('global_similarity', compute)


def positive_pairs(texts: Sequence[str], labels: Optional[Tensor], device) -> Tensor:
    """(B, B) bool: image ``i`` matches caption ``j``: equal captions, equal labels (labels
    < 0 match nothing but themselves), and the diagonal."""
    codes = {text: index for index, text in enumerate(texts)}
    same_text = torch.tensor([codes[t] for t in texts], device=device)
    mask = same_text[:, None] == same_text[None, :]
    if labels is not None:
        labelled = labels >= 0
        mask |= (labels[:, None] == labels[None, :]) & labelled[:, None] & labelled[None, :]
    return mask | torch.eye(len(texts), dtype=torch.bool, device=device)


class PretrainingTask(nn.Module):
    """Base class of the tasks: one objective family computed from a
    :class:`PretrainingStep`.

    Subclasses take the ``backbone`` as first argument (to size their heads; they must not
    keep it) and implement :meth:`forward`. Tasks that define the joint embedding space set
    ``joint_space = True`` and implement ``embed_image(encoded)`` / ``embed_text(encoded)``
    (unnormalised (B, E) features of encoder outputs) and a ``logit_scale`` parameter (log).
    Tasks that can score image-text pairs (zero-shot without a joint space) implement
    ``score_pairs(backbone, image_view, text_view)`` -> (M,), higher for better matches.

    Args:
        weight: factor of the task's losses in the total.
        stages: pretraining stages in which the task runs (e.g. VLMo's ``'image'``,
            ``'text'``, ``'image_text'``); None: always.
    """

    joint_space = False
    needs_momentum = False

    def __init__(self, weight: float = 1.0, stages: Optional[Sequence[str]] = None):
        super().__init__()
        self.weight = float(weight)
        self.stages = None if stages is None else tuple(stages)
        self.name: Optional[str] = None  # the key in the model's ``objectives``

    def runs_in(self, stage: Optional[str]) -> bool:
        """Whether the task runs in ``stage`` (None: the model has no stages)."""
        return self.stages is None or stage in self.stages

    def forward(self, step: PretrainingStep) -> Dict[str, Tensor]:
        raise NotImplementedError


def special_token_mask(tokenizer, input_ids: Tensor) -> Tensor:
    """(B, L) bool, True on special tokens ([CLS], [SEP], [PAD], ...) of ``tokenizer``."""
    special: List[int] = list(getattr(tokenizer, 'special_token_ids', []))
    for name in ('pad_token_id', 'sot_token_id', 'eot_token_id'):
        if hasattr(tokenizer, name):
            special.append(getattr(tokenizer, name))
    return torch.isin(input_ids, torch.tensor(special, device=input_ids.device))
