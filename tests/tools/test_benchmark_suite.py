"""tools/benchmark.py --quick on the CPU: the table has every row with a ratio equal to its
two times, the value checks pass (ITC equals open_clip's ClipLoss, IPOT within 1e-2 of
POT's exact emd2, the recipe's first loss equals the plain loop's), and the CPU peak-memory
measurement sees an allocation of known size."""
import runpy
from pathlib import Path

import pytest
import torch

from vlkd.benchmark.measure import MIB, peak_memory

ROOT = Path(__file__).resolve().parents[2]

ROW_NAMES = [
    'ITC loss vs open_clip ClipLoss (fwd+bwd)',
    'WRA: batched IPOT (PyTorch loop) vs per-sample POT ot.emd2 loop',
    'WRA: batched IPOT (PyTorch loop) vs per-sample POT ot.emd2 loop',
    'sparsemax vs plain sort-based + autograd (fwd+bwd)',
    'region embedding: crops vs naive crop loop',
    'region embedding: dense vs naive crop loop',
    'ViLD (distilled) student step vs plain mmdet Faster R-CNN step',
    'CLIP recipe step: vlkd / mmengine Runner vs plain PyTorch loop',
    "ViT training step vs the machine's torch.mm throughput",
]


def test_cpu_peak_memory_sees_a_known_allocation():
    def allocate():
        x = torch.ones(2048, 4096)  # 32 MiB
        return x.sum()

    allocate()
    peak = peak_memory(allocate, torch.device('cpu'))
    if peak is None:
        pytest.skip('this kernel does not let a process reset its peak RSS')
    assert 31 * MIB <= peak <= 40 * MIB


@pytest.mark.slow
def test_quick_run_prints_every_row_with_passing_checks(shapes_root, capsys):
    suite = runpy.run_path(str(ROOT / 'tools' / 'benchmark.py'), run_name='benchmark')
    rows = suite['main'](['--quick', '--data-root', str(shapes_root)])
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith('| ')][1:]
    cells = [[cell.strip() for cell in line.strip('|').split('|')] for line in table]
    assert [row[0] for row in cells] == ROW_NAMES
    assert 'device: cpu; CPU ' in out and 'torch ' in out
    for row, line in zip(rows, cells):
        assert row['passed'] is not False, line
        assert row['ours'] > 0 and row['theirs'] > 0
        assert float(line[5]) == pytest.approx(row['theirs'] / row['ours'], abs=0.006)
        assert all(cell == '-' or float(cell) >= 0 for cell in line[6:8])
    checks = {line[0] + line[1]: line[2] for line in cells}
    assert sum(check.endswith('(ok)') for check in checks.values()) == 7
    itc = rows[0]['agreement']
    assert float(itc.split()[-1]) <= 1e-5
