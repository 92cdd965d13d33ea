"""FDT: finite discrete tokens as the shared basis of image and text representations.

A learnable set of ``C`` tokens ``c_1 .. c_C`` (dimension ``D``) is shared by both
modalities. An image's patch embeddings ``f_n`` (or a caption's word embeddings) are
projected to ``D``; the image's relevance to token ``i`` is its best-matching patch,

    r_i = max_n <P f_n, c_i>        (padding excluded),

the relevances are normalised over the tokens by softmax or by sparsemax (exact zeros for
irrelevant tokens), and the representation is the weighted sum of the tokens,
``sum_i w_i c_i``. Matching image and text representations are trained with the InfoNCE
loss of :class:`.itc.ImageTextContrastiveLoss`.

:func:`sparsemax` is the Euclidean projection onto the probability simplex (Martins &
Astudillo 2016): ``p = max(z - tau, 0)`` with ``tau`` chosen so that ``p`` sums to 1, found
by sorting; its gradient on the support is ``g - mean_support(g)``, zero elsewhere.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from vlkd.registry import MODELS

from .itc import ImageTextContrastiveLoss


class _Sparsemax(torch.autograd.Function):
    """Sort-based sparsemax along ``dim`` with its closed-form backward."""

    @staticmethod
    def forward(ctx, z: Tensor, dim: int) -> Tensor:
        z = z - z.amax(dim=dim, keepdim=True)  # the projection is shift invariant
        z_sorted = z.sort(dim=dim, descending=True).values
        cumulative = z_sorted.cumsum(dim=dim)
        shape = [1] * z.dim()
        shape[dim] = -1
        rank = torch.arange(1, z.shape[dim] + 1, dtype=z.dtype, device=z.device).view(shape)
        # sorted entries in the support form a prefix: those with 1 + k z_(k) > sum_{j<=k} z_(j)
        support_size = (1 + rank * z_sorted > cumulative).sum(dim=dim, keepdim=True)
        tau = (cumulative.gather(dim, support_size - 1) - 1) / support_size.to(z.dtype)
        probs = (z - tau).clamp(min=0)
        ctx.save_for_backward(probs)
        ctx.dim = dim
        return probs

    @staticmethod
    def backward(ctx, grad: Tensor):
        probs, = ctx.saved_tensors
        support = probs > 0
        mean = (grad * support).sum(dim=ctx.dim, keepdim=True) / support.sum(
            dim=ctx.dim, keepdim=True)
        return torch.where(support, grad - mean, torch.zeros_like(grad)), None


def sparsemax(z: Tensor, dim: int = -1) -> Tensor:
    """Sparsemax of ``z`` along ``dim``: the closest point of the probability simplex."""
    return _Sparsemax.apply(z, dim % z.dim())


@MODELS.register_module()
class FDTContrastiveLoss(nn.Module):
    """Shared discrete tokens, token-weighted representations and their InfoNCE loss.

    Args:
        image_dim: size of the patch embeddings.
        text_dim: size of the word embeddings.
        num_tokens: C, number of shared tokens.
        token_dim: D, size of the tokens (and of the representations).
        normalization: ``'softmax'`` or ``'sparsemax'`` of the relevances over the tokens.
        itc: arguments of :class:`.itc.ImageTextContrastiveLoss` (scale clamp, smoothing,
            ``local_loss``, ``loss_weight``).
    """

    def __init__(self, image_dim: int, text_dim: int, num_tokens: int, token_dim: int,
                 normalization: str = 'sparsemax', itc: Optional[dict] = None):
        super().__init__()
        if normalization not in ('softmax', 'sparsemax'):
            raise ValueError(f"normalization must be 'softmax' or 'sparsemax', got "
                             f'{normalization!r}')
        self.normalization = normalization
        self.tokens = nn.Parameter(torch.randn(num_tokens, token_dim) * token_dim ** -0.5)
        self.image_proj = nn.Linear(image_dim, token_dim)
        self.text_proj = nn.Linear(text_dim, token_dim)
        self.itc = ImageTextContrastiveLoss(**(itc or {}))

    def token_weights(self, embeddings: Tensor, proj: nn.Linear,
                      mask: Optional[Tensor] = None) -> Tensor:
        """(B, C) normalised relevances of the tokens to ``embeddings`` (B, N, proj's input)
        with ``mask`` (B, N), 1 / True on real patches / words."""
        if embeddings.dim() != 3 or embeddings.shape[-1] != proj.in_features:
            raise ValueError(f'embeddings must be (B, N, {proj.in_features}), got '
                             f'{tuple(embeddings.shape)}')
        relevance = proj(embeddings) @ self.tokens.T  # (B, N, C)
        if mask is not None:
            if mask.shape != embeddings.shape[:2]:
                raise ValueError(f'mask must be (B, N) = {tuple(embeddings.shape[:2])}, got '
                                 f'{tuple(mask.shape)}')
            empty = ~mask.bool().any(dim=1)
            if empty.any():
                raise ValueError(f'sample {empty.nonzero()[0].item()} has no real patch or word')
            relevance = relevance.masked_fill(~mask.bool()[..., None], -torch.inf)
        relevance = relevance.amax(dim=1)
        if self.normalization == 'softmax':
            return relevance.softmax(dim=-1)
        return sparsemax(relevance, dim=-1)

    def encode_image(self, patch_embeddings: Tensor, patch_mask: Optional[Tensor] = None
                     ) -> Tensor:
        """(B, D) FDT representation of patch embeddings (B, N, image_dim)."""
        return self.token_weights(patch_embeddings, self.image_proj, patch_mask) @ self.tokens

    def encode_text(self, word_embeddings: Tensor, word_mask: Optional[Tensor] = None
                    ) -> Tensor:
        """(B, D) FDT representation of word embeddings (B, L, text_dim)."""
        return self.token_weights(word_embeddings, self.text_proj, word_mask) @ self.tokens

    def forward(self, patch_embeddings: Tensor, word_embeddings: Tensor, log_scale: Tensor,
                patch_mask: Optional[Tensor] = None,
                word_mask: Optional[Tensor] = None) -> Tensor:
        """InfoNCE (scalar) between the FDT representations of ``B`` matching pairs:
        ``patch_embeddings`` (B, N, image_dim), ``word_embeddings`` (B, L, text_dim), masks
        (B, N) / (B, L), ``log_scale`` the ITC log logit scale."""
        return self.itc(self.encode_image(patch_embeddings, patch_mask),
                        self.encode_text(word_embeddings, word_mask), log_scale)
