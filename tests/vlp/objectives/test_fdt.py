"""FDT: sparsemax against a brute-force Euclidean projection onto the simplex (every
support tried), its gradient by finite differences (gradcheck), and the FDT representations
and loss against the formula written with loops in numpy."""
import itertools
import math

import numpy as np
import pytest
import torch

from vlkd.registry import MODELS
from vlkd.vlp.objectives import FDTContrastiveLoss, sparsemax


def project_onto_simplex(z):
    """Closest point of the probability simplex to z: over all candidate supports S, the
    point p_S = z - tau on S (tau making it sum to 1), 0 elsewhere; keep the feasible one
    nearest to z."""
    best, best_distance = None, np.inf
    for size in range(1, len(z) + 1):
        for support in itertools.combinations(range(len(z)), size):
            support = list(support)
            tau = (z[support].sum() - 1) / size
            p = np.zeros_like(z)
            p[support] = z[support] - tau
            if (p[support] < 0).any():
                continue
            distance = ((p - z) ** 2).sum()
            if distance < best_distance:
                best, best_distance = p, distance
    return best


def test_sparsemax_is_the_projection_onto_the_simplex():
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.1, 1.0, 3.0], dtype=torch.float64).repeat(14)[:40, None]
    z = torch.randn(40, 6, generator=g, dtype=torch.float64) * scales  # dense to sparse
    p = sparsemax(z)
    for row in range(len(z)):
        np.testing.assert_allclose(p[row].numpy(), project_onto_simplex(z[row].numpy()),
                                   atol=1e-12)
    assert (p == 0).any()  # sparse on these inputs
    columns = sparsemax(z.T, dim=0)
    torch.testing.assert_close(columns, p.T)


def test_sparsemax_gradient_by_finite_differences():
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(5, 7, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(sparsemax, (z,))
    assert torch.autograd.gradcheck(lambda x: sparsemax(x, dim=0), (z,))


def numpy_representation(loss, embeddings, mask, proj, normalization):
    tokens = loss.tokens.detach().numpy()
    weight, bias = proj.weight.detach().numpy(), proj.bias.detach().numpy()
    out = []
    for b in range(len(embeddings)):
        relevance = np.full(len(tokens), -np.inf)
        for n in range(embeddings.shape[1]):
            if mask[b, n]:
                projected = weight @ embeddings[b, n] + bias
                relevance = np.maximum(relevance, [projected @ c for c in tokens])
        if normalization == 'softmax':
            w = np.exp(relevance - relevance.max())
            w /= w.sum()
        else:
            w = project_onto_simplex(relevance)
        out.append(sum(w[i] * tokens[i] for i in range(len(tokens))))
    return np.array(out)


def info_nce(u, v, scale):
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    logits = scale * u @ v.T
    rows = np.mean([-(logits[i, i] - np.log(np.exp(logits[i]).sum())) for i in range(len(u))])
    cols = np.mean([-(logits[i, i] - np.log(np.exp(logits[:, i]).sum())) for i in range(len(u))])
    return (rows + cols) / 2


@pytest.mark.parametrize('normalization', ['softmax', 'sparsemax'])
def test_representations_and_loss_against_the_formula(normalization):
    torch.manual_seed(2)
    loss = MODELS.build(dict(type='FDTContrastiveLoss', image_dim=5, text_dim=4, num_tokens=6,
                             token_dim=3, normalization=normalization)).double()
    patches, words = torch.randn(4, 7, 5).double(), torch.randn(4, 3, 4).double()
    patch_mask = torch.ones(4, 7, dtype=torch.bool)
    patch_mask[1, 4:] = False
    word_mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    patches[~patch_mask] = 1e3  # padding must not take part in the max
    image = numpy_representation(loss, patches.numpy(), patch_mask, loss.image_proj,
                                 normalization)
    text = numpy_representation(loss, words.numpy(), word_mask, loss.text_proj, normalization)
    np.testing.assert_allclose(loss.encode_image(patches, patch_mask).detach().numpy(), image,
                               rtol=1e-10)
    np.testing.assert_allclose(loss.encode_text(words, word_mask).detach().numpy(), text,
                               rtol=1e-10)
    log_scale = torch.tensor(math.log(10.0), dtype=torch.float64)
    value = loss(patches, words, log_scale, patch_mask, word_mask)
    assert value.item() == pytest.approx(info_nce(image, text, 10.0), rel=1e-10)
    value.backward()
    assert loss.tokens.grad.abs().sum() > 0


def test_errors_name_the_expected_shapes():
    loss = FDTContrastiveLoss(image_dim=5, text_dim=4, num_tokens=6, token_dim=3)
    with pytest.raises(ValueError, match=r'embeddings must be \(B, N, 5\)'):
        loss.encode_image(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r'mask must be \(B, N\) = \(2, 3\)'):
        loss.encode_text(torch.randn(2, 3, 4), torch.ones(2, 4))
    with pytest.raises(ValueError, match='sample 1 has no real patch or word'):
        loss.encode_text(torch.randn(2, 3, 4), torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match='normalization'):
        FDTContrastiveLoss(5, 4, 6, 3, normalization='entmax')
