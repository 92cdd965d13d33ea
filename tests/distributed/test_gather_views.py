"""Gathering across processes for ITM's global negatives: captions, labels and unimodal
encodings of every process in rank order, token sequences padded to the longest, the
gradient of each gathered row reaching the process that owns it (two gloo processes)."""
import sys
from pathlib import Path

import pytest
import torch

from vlkd.vlp.objectives.distributed import gather_objects, gather_padded

sys.path.insert(0, str(Path(__file__).parents[1] / 'vlp' / 'objectives'))
from _distributed import run_in_processes  # noqa: E402


def _worker(rank, world_size):
    length = 3 + 2 * rank  # rank 0: 3 tokens, rank 1: 5
    tokens = torch.full((2, length, 4), float(rank + 1), requires_grad=True)
    mask = torch.ones(2, length, dtype=torch.bool)
    gathered = gather_padded(tokens)
    gathered_mask = gather_padded(mask, value=False)
    # a loss on rank 0 that reads only rank 1's rows: its gradient must reach rank 1
    loss = gathered[2:].sum() * (3.0 if rank == 0 else 0.0)
    loss.backward()
    return dict(shape=tuple(gathered.shape), values=gathered.detach(), mask=gathered_mask,
                grad=tokens.grad, captions=gather_objects([f'caption {rank}-{i}'
                                                           for i in range(2)]))


@pytest.mark.slow  # two spawned processes: about 10 s
def test_padded_gather_with_gradient_and_captions():
    results = run_in_processes(_worker)
    for out in results:
        assert out['shape'] == (4, 5, 4)
        assert out['captions'] == ['caption 0-0', 'caption 0-1', 'caption 1-0', 'caption 1-1']
        expected_mask = torch.zeros(4, 5, dtype=torch.bool)
        expected_mask[:2, :3] = expected_mask[2:] = True
        assert torch.equal(out['mask'], expected_mask)
        assert torch.equal(out['values'][:2, :3], torch.ones(2, 3, 4))
        assert torch.equal(out['values'][:2, 3:], torch.zeros(2, 2, 4))  # padding
        assert torch.equal(out['values'][2:], torch.full((2, 5, 4), 2.0))
    assert torch.equal(results[0]['grad'], torch.zeros(2, 3, 4))  # nobody read rank 0's
    assert torch.equal(results[1]['grad'], torch.full((2, 5, 4), 3.0))  # rank 0's loss
