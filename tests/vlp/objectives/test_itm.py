"""ITM: the hard-negative sampler's frequencies against the restricted softmax (chi-square,
seeded), the pair layout, and the loss / accuracy against BCE written out in numpy."""
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from vlkd.registry import MODELS
from vlkd.vlp.objectives import ImageTextMatchingLoss
from vlkd.vlp.objectives.itm import matching_pairs, sample_negatives


def restricted_softmax(row, allowed):
    """P(j) = exp(row_j) / sum over allowed k of exp(row_k), 0 where not allowed."""
    weights = np.array([np.exp(row[j]) if allowed[j] else 0.0 for j in range(len(row))])
    return weights / weights.sum()


def test_hard_negatives_follow_the_softmax_of_the_similarities():
    g = torch.Generator().manual_seed(0)
    similarity = 2.0 * torch.randn(5, 5, generator=g)
    positive = torch.eye(5, dtype=torch.bool)
    positive[1, 3] = positive[3, 1] = True  # pairs 1 and 3: the same image, two captions
    draws = 4000
    text_counts, image_counts = np.zeros((5, 5)), np.zeros((5, 5))
    for _ in range(draws):
        negative_text, negative_image = sample_negatives(similarity, positive, generator=g)
        text_counts[np.arange(5), negative_text.numpy()] += 1
        image_counts[np.arange(5), negative_image.numpy()] += 1
    sim, pos = similarity.numpy(), positive.numpy()
    for counts, scores, mask in ((text_counts, sim, pos), (image_counts, sim.T, pos.T)):
        for i in range(5):
            expected = restricted_softmax(scores[i], ~mask[i])
            assert counts[i][mask[i]].sum() == 0  # positives are never drawn
            allowed = ~mask[i]
            p_value = chisquare(counts[i][allowed], draws * expected[allowed]).pvalue
            assert p_value > 1e-3, (i, counts[i], draws * expected)


def test_uniform_swapping_without_similarities():
    g = torch.Generator().manual_seed(1)
    similarity = torch.tensor([[9.0, -9.0, 0.0], [5.0, 0.0, -5.0], [0.0, 9.0, 1.0]])
    draws = 3000
    counts = np.zeros((3, 3))
    for _ in range(draws):
        negative_text, _ = sample_negatives(similarity, hard=False, generator=g)
        counts[np.arange(3), negative_text.numpy()] += 1
    assert np.all(np.diag(counts) == 0)
    for i in range(3):
        others = [j for j in range(3) if j != i]
        assert chisquare(counts[i, others]).pvalue > 1e-3


def test_hardest_negatives_are_the_most_similar_non_positives():
    g = torch.Generator().manual_seed(2)
    similarity = torch.randn(6, 6, generator=g)
    positive = torch.eye(6, dtype=torch.bool)
    positive[0, 4] = positive[4, 0] = True
    negative_text, negative_image = sample_negatives(similarity, positive, hard='hardest')
    sim, pos = similarity.tolist(), positive.tolist()
    for i in range(6):
        texts = [j for j in range(6) if not pos[i][j]]
        images = [j for j in range(6) if not pos[j][i]]
        assert negative_text[i] == max(texts, key=lambda j: sim[i][j])
        assert negative_image[i] == max(images, key=lambda j: sim[j][i])
    with pytest.raises(ValueError, match="'softmax', 'hardest', 'uniform'"):
        sample_negatives(similarity, hard='hard')


def test_sampler_rejects_rows_without_negatives_and_bad_shapes():
    positive = torch.eye(3, dtype=torch.bool)
    positive[2] = True
    with pytest.raises(ValueError, match='image 2 matches every sample'):
        sample_negatives(torch.zeros(3, 3), positive)
    with pytest.raises(ValueError, match=r'square \(N, N\)'):
        sample_negatives(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r'bool \(3, 3\)'):
        sample_negatives(torch.zeros(3, 3), torch.eye(3))


def test_matching_pairs_layout():
    image_index, text_index, is_match = matching_pairs(torch.tensor([2, 0, 1]),
                                                       torch.tensor([1, 2, 0]))
    pairs = list(zip(image_index.tolist(), text_index.tolist(), is_match.tolist()))
    assert pairs == [(0, 0, 1), (1, 1, 1), (2, 2, 1),
                     (0, 2, 0), (1, 0, 0), (2, 1, 0),
                     (1, 0, 0), (2, 1, 0), (0, 2, 0)]


def numpy_bce(features, weight, bias, labels):
    losses, correct = [], []
    for x, y in zip(features, labels):
        z = float(weight @ x + bias)
        p = 1 / (1 + np.exp(-z))
        losses.append(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
        correct.append((p > 0.5) == bool(y))
    return np.mean(losses), np.mean(correct)


@pytest.mark.parametrize('dual_stream', [False, True])
def test_loss_and_accuracy_match_binary_cross_entropy(dual_stream):
    torch.manual_seed(2)
    loss = MODELS.build(dict(type='ImageTextMatchingLoss', hidden_dim=6,
                             dual_stream=dual_stream, loss_weight=0.5)).double()
    text_cls, image_cls = torch.randn(9, 6, dtype=torch.float64), torch.randn(9, 6,
                                                                              dtype=torch.float64)
    is_match = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0])
    out = loss(text_cls, is_match, image_cls if dual_stream else None)
    features = torch.cat([text_cls, image_cls], 1) if dual_stream else text_cls
    expected_loss, expected_accuracy = numpy_bce(
        features.numpy(), loss.head.weight.detach().numpy()[0],
        loss.head.bias.detach().numpy()[0], is_match.numpy())
    assert out['loss'].item() == pytest.approx(0.5 * expected_loss, rel=1e-10)
    assert out['accuracy'].item() == pytest.approx(expected_accuracy)


def test_head_input_errors_name_the_expected_shape():
    single, dual = ImageTextMatchingLoss(hidden_dim=4), ImageTextMatchingLoss(4, dual_stream=True)
    x, y = torch.randn(3, 4), torch.tensor([1, 0, 0])
    with pytest.raises(ValueError, match=r'fused_cls must be \(M, 4\)'):
        single(torch.randn(3, 5), y)
    with pytest.raises(ValueError, match=r'needs image_cls \(M, 4\)'):
        dual(x, y)
    with pytest.raises(ValueError, match='single-stream'):
        single(x, y, x)
    with pytest.raises(ValueError, match=r'is_match must be \(3,\)'):
        single(x, y[:2])
