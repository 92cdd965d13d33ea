"""Image-text retrieval R@K with several captions per image, against plain Python loops."""
import math
import random

import pytest
import torch
from mmengine.registry import init_default_scope

from vlkd.evaluation.retrieval import retrieval_ranks, retrieval_recall
from vlkd.registry import METRICS


def reference_recall(images, captions, k):
    """R@k (%) both ways by sorting, with lists of floats; ``captions[i]`` lists image i's."""
    def unit(v):
        norm = math.sqrt(sum(x * x for x in v))
        return [x / norm for x in v]

    images = [unit(v) for v in images]
    texts, owner = [], []
    for i, caps in enumerate(captions):
        for c in caps:
            texts.append(unit(c))
            owner.append(i)
    sim = [[sum(a * b for a, b in zip(im, t)) for t in texts] for im in images]
    i2t = 0
    for i in range(len(images)):
        ranked = sorted(range(len(texts)), key=lambda j: -sim[i][j])
        i2t += any(owner[j] == i for j in ranked[:k])
    t2i = 0
    for j in range(len(texts)):
        ranked = sorted(range(len(images)), key=lambda i: -sim[i][j])
        t2i += owner[j] in ranked[:k]
    return 100 * i2t / len(images), 100 * t2i / len(texts)


def random_set(seed, num_images=9, dim=6):
    rng = random.Random(seed)
    images = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(num_images)]
    # captions near their image (plus noise), 1 to 4 each: retrieval is neither 0 nor 100
    captions = [[[x + rng.gauss(0, 1.2) for x in img] for _ in range(rng.randint(1, 4))]
                for img in images]
    return images, captions


def test_metric_matches_python_loops():
    init_default_scope('vlkd')
    images, captions = random_set(0)
    metric = METRICS.build(dict(type='ImageTextRetrievalMetric', ks=(1, 2, 5)))
    samples = [dict(image_embedding=torch.tensor(img), text_embeddings=torch.tensor(caps),
                    img_id=i) for i, (img, caps) in enumerate(zip(images, captions))]
    metric.process({}, samples[:4])
    metric.process({}, samples[4:])
    result = metric.evaluate(size=len(samples))
    values = []
    for k in (1, 2, 5):
        i2t, t2i = reference_recall(images, captions, k)
        assert result[f'retrieval/i2t_R@{k}'] == pytest.approx(i2t)
        assert result[f'retrieval/t2i_R@{k}'] == pytest.approx(t2i)
        values += [i2t, t2i]
    assert result['retrieval/mean_R'] == pytest.approx(sum(values) / 6)
    assert 0 < result['retrieval/t2i_R@1'] < 100  # the test set is not trivial


@pytest.mark.parametrize('seed', [1, 2])
def test_function_blocks_and_one_caption_samples(seed):
    images, captions = random_set(seed, num_images=12)
    texts = torch.tensor([c for caps in captions for c in caps])
    owner = torch.tensor([i for i, caps in enumerate(captions) for _ in caps])
    similarity = torch.nn.functional.normalize(torch.tensor(images), dim=-1) @ \
        torch.nn.functional.normalize(texts, dim=-1).T
    whole = retrieval_ranks(similarity, owner)
    blocks = retrieval_ranks(similarity, owner, chunk=5)
    assert all(torch.equal(a, b) for a, b in zip(whole, blocks))
    result = retrieval_recall(similarity, owner, ks=(3,))
    assert (result['i2t_R@3'], result['t2i_R@3']) == pytest.approx(
        reference_recall(images, captions, 3))


def test_one_caption_per_image_given_as_a_vector():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ImageTextRetrievalMetric', ks=(1,)))
    # image 0 and 1 each closest to their caption; caption of image 2 closest to image 0
    metric.process({}, [
        dict(image_embedding=torch.tensor([1.0, 0.0]), text_embeddings=torch.tensor([1.0, 0.1])),
        dict(image_embedding=torch.tensor([0.0, 1.0]), text_embeddings=torch.tensor([0.1, 1.0])),
        dict(image_embedding=torch.tensor([-1.0, 0.2]), text_embeddings=torch.tensor([1.0, 0.3])),
    ])
    result = metric.evaluate(size=3)
    # image 2's most similar text is caption 1 ([0.1, 1.0]); caption 2's most similar image is 0
    assert result['retrieval/i2t_R@1'] == pytest.approx(200 / 3)
    assert result['retrieval/t2i_R@1'] == pytest.approx(200 / 3)


def test_evaluator_passes_data_samples_of_the_model():
    """mmengine's Evaluator turns the model's data elements into dicts (metainfo included)."""
    from mmengine.evaluator import Evaluator
    from mmengine.structures import BaseDataElement
    images, captions = random_set(3, num_images=5)
    evaluator = Evaluator(dict(type='vlkd.ImageTextRetrievalMetric', ks=(1, 2)))
    samples = [BaseDataElement(metainfo=dict(img_id=i), image_embedding=torch.tensor(img),
                               text_embeddings=torch.tensor(caps))
               for i, (img, caps) in enumerate(zip(images, captions))]
    evaluator.process(samples)
    result = evaluator.evaluate(len(samples))
    assert (result['retrieval/i2t_R@2'], result['retrieval/t2i_R@2']) == pytest.approx(
        reference_recall(images, captions, 2))


def test_bad_input_is_named():
    init_default_scope('vlkd')
    metric = METRICS.build(dict(type='ImageTextRetrievalMetric'))
    with pytest.raises(KeyError, match='text_embeddings'):
        metric.process({}, [dict(image_embedding=torch.ones(2))])
    metric.process({}, [dict(image_embedding=torch.ones(2), text_embeddings=torch.ones(1, 2),
                             img_id=5)] * 2)
    with pytest.raises(ValueError, match='image 5 was evaluated more than once'):
        metric.evaluate(size=2)
    with pytest.raises(ValueError, match='image 1 has no caption'):
        retrieval_recall(torch.rand(2, 3), torch.tensor([0, 0, 0]))
