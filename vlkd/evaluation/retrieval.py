"""Image-text retrieval: recall at K in both directions, with several captions per image.

The COCO / Flickr30k protocol (as in UNITER, ALBEF): from the cosine similarities ``S``
(N_img, N_txt) of all images and all captions of the test set,

- image -> text: image ``i`` is retrieved correctly at K if *any* of its captions is among
  the K captions most similar to it;
- text -> image: caption ``j`` is retrieved correctly at K if its image is among the K
  images most similar to it.

A query's rank is the number of candidates strictly more similar than its best match (so a
tie counts in its favour). R@K is the percentage of queries with rank < K; ``mean_R`` is the
mean of all R@K of both directions.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor

from vlkd.registry import METRICS

__all__ = ['retrieval_ranks', 'retrieval_recall', 'ImageTextRetrievalMetric']


@torch.no_grad()
def retrieval_ranks(similarity: Tensor, text_to_image: Tensor, chunk: int = 1024):
    """Ranks (0 = first) of the best match of every image query (N_img,) and every text
    query (N_txt,), from ``similarity`` (N_img, N_txt) and the image index of each text
    ``text_to_image`` (N_txt,). Works on blocks of ``chunk`` images to bound memory."""
    num_images, num_texts = similarity.shape
    if text_to_image.shape != (num_texts,):
        raise ValueError(f'text_to_image must give the image of each of the {num_texts} '
                         f'texts, got shape {tuple(text_to_image.shape)}.')
    if len(text_to_image) and (text_to_image.min() < 0 or text_to_image.max() >= num_images):
        raise ValueError(f'text_to_image holds indices outside [0, {num_images}).')
    counts = torch.bincount(text_to_image, minlength=num_images)
    if (counts == 0).any():
        raise ValueError(f'image {int((counts == 0).nonzero()[0])} has no caption: every image '
                         'query needs at least one correct text.')
    columns = torch.arange(num_texts, device=similarity.device)
    positive_similarity = similarity[text_to_image, columns]  # (N_txt,)
    image_ranks = []
    text_ranks = torch.zeros(num_texts, dtype=torch.long, device=similarity.device)
    for start in range(0, num_images, chunk):
        block = similarity[start:start + chunk]
        rows = torch.arange(start, start + len(block), device=similarity.device)
        is_positive = text_to_image[None, :] == rows[:, None]
        best = block.masked_fill(~is_positive, -torch.inf).amax(dim=1)
        image_ranks.append((block > best[:, None]).sum(dim=1))
        text_ranks += (block > positive_similarity[None, :]).sum(dim=0)
    return torch.cat(image_ranks), text_ranks


def retrieval_recall(similarity: Tensor, text_to_image: Tensor,
                     ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """``i2t_R@K`` and ``t2i_R@K`` (%) for every K, and ``mean_R``; see the module doc."""
    image_ranks, text_ranks = retrieval_ranks(similarity, text_to_image)
    result = {}
    for direction, ranks in (('i2t', image_ranks), ('t2i', text_ranks)):
        for k in ks:
            result[f'{direction}_R@{k}'] = 100.0 * (ranks < k).double().mean().item()
    result['mean_R'] = sum(result.values()) / len(result)
    return result


@METRICS.register_module()
class ImageTextRetrievalMetric(BaseMetric):
    """Recall at K of image -> text and text -> image retrieval over the whole test set.

    Each data sample the model returns is one image with all its captions:
    ``image_embedding`` (D,) and ``text_embeddings`` (M, D) (or (D,) for one caption); an
    ``img_id`` in the sample is checked for duplicates (evaluate with one item per image,
    e.g. ``ImageTextDataset(items='images')``). Embeddings are L2-normalised here, so the
    similarity is the cosine.

    Args:
        ks: the K of R@K.
    """

    default_prefix = 'retrieval'

    def __init__(self, ks: Sequence[int] = (1, 5, 10), collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not ks or min(ks) < 1:
            raise ValueError(f'ks must be positive integers, got {ks}.')
        self.ks = tuple(ks)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            missing = [k for k in ('image_embedding', 'text_embeddings') if k not in sample]
            if missing:
                raise KeyError(f'{type(self).__name__} needs {missing} in the data samples the '
                               f'model returns (it got {sorted(sample)}).')
            texts = torch.as_tensor(sample['text_embeddings']).detach().float().cpu()
            self.results.append((torch.as_tensor(sample['image_embedding']).detach().float()
                                 .cpu(), texts.reshape(-1, texts.shape[-1]),
                                 sample.get('img_id')))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        ids = [img_id for _, _, img_id in results if img_id is not None]
        if len(ids) != len(set(ids)):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f'image {duplicate} was evaluated more than once: retrieval needs '
                             'one item per image with all its captions (items=\'images\').')
        images = F.normalize(torch.stack([image for image, _, _ in results]), dim=-1)
        texts = F.normalize(torch.cat([text for _, text, _ in results]), dim=-1)
        text_to_image = torch.cat([torch.full((len(text),), i, dtype=torch.long)
                                   for i, (_, text, _) in enumerate(results)])
        return retrieval_recall(images @ texts.T, text_to_image, self.ks)
