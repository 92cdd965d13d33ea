"""Training by caching: methods whose training set is a memory of frozen image embeddings.

Tip-Adapter's cache model and the linear probe do not learn by gradient descent (Tip-Adapter-F
fine-tunes afterwards). Under ``tools/train.py`` their "training" is a pass, or several,
over the few-shot training set: each epoch shows every sample once (an augmented view), and
:class:`FeatureCache` sums the teacher's embeddings per sample (``sample_idx`` of the data
samples). A sample's cached feature is the mean over its views (Tip-Adapter: 10 augmented
epochs). The cache is a set of buffers, so checkpoints carry it. Caching runs in one
process (a distributed launch is refused: each process would see other samples).

:class:`CachingClassifier` runs this in ``train_step`` for the first ``cache_epochs``
epochs and then, for methods that fine-tune (Tip-Adapter-F), takes ordinary optimizer
steps. The phase is read off the cache itself: a batch whose samples have all been seen
``cache_epochs`` times is a fine-tuning batch.
"""
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch
from mmengine.dist import get_world_size
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from .classifier import PromptClassifier


class FeatureCache(nn.Module):
    """Per-sample sums of image embeddings over views, with labels and view counts.

    Buffers (N = largest sample index + 1): ``sums`` (N, D) float32, ``labels`` (N,) int64
    (-1 for samples never seen), ``views`` (N,) int64.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer('sums', torch.zeros(0, dim))
        self.register_buffer('labels', torch.zeros(0, dtype=torch.long))
        self.register_buffer('views', torch.zeros(0, dtype=torch.long))

    def __len__(self) -> int:
        """The number of samples seen at least once."""
        return int((self.views > 0).sum())

    def _grow(self, size: int) -> None:
        extra = size - len(self.views)
        if extra > 0:
            self.sums = torch.cat([self.sums, self.sums.new_zeros(extra, self.sums.shape[1])])
            self.labels = torch.cat([self.labels, self.labels.new_full((extra,), -1)])
            self.views = torch.cat([self.views, self.views.new_zeros(extra)])

    def views_of(self, indices: Tensor) -> Tensor:
        """(B,) how often each sample was seen."""
        indices = indices.to(self.views.device)
        counts = torch.zeros_like(indices)
        known = indices < len(self.views)
        counts[known] = self.views[indices[known]]
        return counts

    @torch.no_grad()
    def add(self, indices: Tensor, features: Tensor, labels: Tensor) -> None:
        """Add one view of samples ``indices`` (B,): features (B, D), labels (B,)."""
        indices, labels = indices.to(self.views.device), labels.to(self.views.device)
        self._grow(int(indices.max()) + 1)
        seen = self.labels[indices]
        changed = (seen >= 0) & (seen != labels)
        if changed.any():
            i = int(indices[changed][0])
            raise ValueError(f'Sample {i} came with label {int(labels[changed][0])} after '
                             f'label {int(seen[changed][0])}: sample_idx must identify a '
                             'sample of one fixed training set.')
        self.sums.index_add_(0, indices, features.to(self.sums))
        self.views.index_add_(0, indices, torch.ones_like(indices))
        self.labels[indices] = labels

    def means(self) -> Tuple[Tensor, Tensor]:
        """(features (N', D), labels (N',)): the mean feature of every sample seen."""
        seen = self.views > 0
        return self.sums[seen] / self.views[seen].unsqueeze(1), self.labels[seen]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the cache has the size of the training set it saw: take the stored sizes
        for name in ('sums', 'labels', 'views'):
            stored = state_dict.get(prefix + name)
            if stored is not None:
                setattr(self, name, torch.empty_like(stored, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CachingClassifier(PromptClassifier):
    """A :class:`PromptClassifier` trained by caching (module doc).

    Args:
        cache_epochs: epochs (views of every training sample) that fill the cache.
        Other arguments: :class:`PromptClassifier`.
    """

    finetunes = False  # whether epochs after the cache ones take optimizer steps

    def __init__(self, teacher, classes, cache_epochs: int = 1, **kwargs):
        super().__init__(teacher, classes, **kwargs)
        if get_world_size() > 1:
            raise RuntimeError(f'{self.method_name} fills its cache in one process (each '
                               'process would cache other samples): train it without a '
                               'distributed launcher; it needs no more than one device.')
        if cache_epochs < 1:
            raise ValueError(f'cache_epochs must be >= 1, got {cache_epochs}')
        self.cache_epochs = cache_epochs
        self.cache = FeatureCache(self.backbone.embed_dim)

    @staticmethod
    def sample_indices(data_samples: Sequence[BaseDataElement]) -> Tensor:
        """(B,) ``sample_idx`` of the samples."""
        missing = [i for i, s in enumerate(data_samples) if 'sample_idx' not in s]
        if missing:
            raise ValueError('Caching methods need the sample_idx of every training sample '
                             '(FewShotDataset sets it; keep it in the meta_keys of '
                             f'PackImageTextInputs); samples {missing[:5]} have none.')
        return torch.tensor([int(s.sample_idx) for s in data_samples])

    def start_finetuning(self) -> None:
        """Called before every fine-tuning step; prepares the learnable parts from the
        cache the first time (idempotent)."""

    def train_step(self, data, optim_wrapper) -> Dict[str, Tensor]:
        data = self.data_preprocessor(data, True)
        samples = data['data_samples']
        indices = self.sample_indices(samples)
        caching = self.cache.views_of(indices) < self.cache_epochs
        if caching.all():
            features = self.image_embeddings(self.teacher_pixels(data['inputs']))
            self.cache.add(indices, features, self.labels(samples))
            return OrderedDict(cached_samples=torch.tensor(float(len(self.cache))))
        if caching.any():
            raise RuntimeError(
                f'A batch mixes samples seen fewer and at least {self.cache_epochs} times: '
                'train caching methods with an epoch-based loop that shows every sample '
                'once per epoch (EpochBasedTrainLoop, DefaultSampler).')
        if not self.finetunes:
            raise RuntimeError(
                f'{self.method_name} has nothing to train after its {self.cache_epochs} cache '
                f'epoch(s): set train_cfg.max_epochs={self.cache_epochs}.')
        self.start_finetuning()
        with optim_wrapper.optim_context(self):
            losses = self._run_forward(data, mode='loss')
        parsed, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        return log_vars
