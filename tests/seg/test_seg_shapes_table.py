"""tools/seg_shapes_table.py: a row for every vlkd-shapes config, the commands it runs, and
the mean ± standard deviation it writes."""
import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = runpy.run_path(str(ROOT / 'tools' / 'seg_shapes_table.py'))


def test_every_shapes_config_has_a_row():
    configs = {Path(row[2]).name for row in TOOL['ROWS']}
    shipped = {p.name for p in (ROOT / 'configs' / 'seg').glob('*_shapes.py')}
    assert configs == shipped
    for key, _, config, trained in TOOL['ROWS']:
        assert trained == (not Path(config).name.startswith('teacher_')), key


def test_dry_run_prints_the_commands(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(ROOT)
    # runs already measured in the checkout's work_dirs would be skipped: an empty root
    work = tmp_path / 'shapes'
    monkeypatch.setitem(TOOL['run_row'].__globals__, 'WORK_ROOT', work)
    TOOL['main'](['--rows', 'teacher', 'combined', 'self_training', '--seeds', '3',
                  '--dry-run'])
    lines = [line[2:] for line in capsys.readouterr().out.splitlines() if line.startswith('$ ')]
    assert lines == [
        f'tools/test.py configs/seg/teacher_zero_shot_shapes.py '
        f'--work-dir {work}/teacher/test_only/test',
        f'tools/train.py configs/seg/deeplabv3plus_r18_combined_shapes.py '
        f'--work-dir {work}/combined/seed3 --cfg-options randomness.seed=3',
        f'tools/test.py configs/seg/deeplabv3plus_r18_combined_shapes.py {work}/combined/seed3 '
        f'--work-dir {work}/combined/seed3/test',
        f'tools/relabel_seg.py configs/seg/deeplabv3plus_r18_combined_shapes.py '
        f'{work}/combined/seed3 --out-dir {work}/self_training/seed3/masks',
        f'tools/train.py configs/seg/deeplabv3plus_r18_self_training_shapes.py '
        f'--work-dir {work}/self_training/seed3 --cfg-options randomness.seed=3 '
        f'train_dataloader.dataset.data_prefix.seg_map_path={work}/self_training/seed3/masks '
        f'load_from={work}/combined/seed3/iter_300.pth',
        f'tools/test.py configs/seg/deeplabv3plus_r18_self_training_shapes.py '
        f'{work}/self_training/seed3 --work-dir {work}/self_training/seed3/test',
    ]


def test_table_from_finished_runs(monkeypatch, tmp_path):
    """Runs whose test results exist are read back, not repeated (no command runs here)."""
    monkeypatch.chdir(tmp_path)
    metrics = {0: (10.0, 2.0, 60.0), 1: (20.0, 4.0, 120.0)}  # seen, unseen, seconds
    for seed, (seen, unseen, seconds) in metrics.items():
        run = tmp_path / 'work_dirs/seg/shapes/gt' / f'seed{seed}'
        (run / 'test' / '20260101_000000').mkdir(parents=True)
        (run / 'test' / '20260101_000000' / '20260101_000000.json').write_text(json.dumps(
            dict(mIoU_seen=seen, mIoU_unseen=unseen, hIoU=2 * seen * unseen / (seen + unseen),
                 mIoU=(seen + unseen) / 2)))
        (run / 'seconds.json').write_text(json.dumps(seconds))
    out = tmp_path / 'table.md'
    TOOL['main'](['--rows', 'gt', '--seeds', '0', '1', '--out', str(out)])
    row = out.read_text().splitlines()[-1]
    # hIoU 3.3 and 6.7: mean 5.0, sample standard deviation 2.357; minutes (1 + 2) / 2
    assert row == ('| student: ground truth of the seen classes | 15.0 ± 7.1 | 3.0 ± 1.4 '
                   '| 5.0 ± 2.4 | 9.0 ± 4.2 | 2 | 1.5 |')
