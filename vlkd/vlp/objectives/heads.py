"""The prediction head that the masked-modelling objectives share."""
from torch import Tensor, nn


class PredictionHead(nn.Module):
    """BERT's prediction head: ``decoder(LayerNorm(GELU(dense(x))))``.

    Args:
        in_dim: width of the encoder outputs it reads.
        out_dim: number of outputs (vocabulary, classes, feature dims, positions).
        layer_norm_eps: epsilon of the LayerNorm (BERT: 1e-12).
    """

    def __init__(self, in_dim: int, out_dim: int, layer_norm_eps: float = 1e-12):
        super().__init__()
        self.in_dim = in_dim
        self.transform = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(),
                                       nn.LayerNorm(in_dim, eps=layer_norm_eps))
        self.decoder = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in_dim) -> (..., out_dim)."""
        return self.decoder(self.transform(x))
