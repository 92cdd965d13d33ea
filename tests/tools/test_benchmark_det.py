"""tools/benchmark_det.py on tiny data: the naive loop embeds the boxes it is given, and the
printed tables hold every way / model with ratios to the baseline measured in the same run."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import build_teacher

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location('vlkd_tools_benchmark_det',
                                                  ROOT / 'tools' / 'benchmark_det.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchmark = load_benchmark()


def table_rows(text: str, header: str):
    """The cells of the Markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


def test_naive_loop_crops_each_scale_of_each_box(tiny_resnet_teacher_cfg):
    teacher = build_teacher(tiny_resnet_teacher_cfg)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 48, 48) * 255
    # image 0: the whole image (the 1.5x box is clipped back to it); image 1: a box whose
    # 1.5x enlargement (about its centre 16, 16) is 4..28 and stays inside the image
    boxes = [torch.tensor([[0., 0., 48., 48.]]), torch.tensor([[8., 8., 24., 24.]])]
    got = benchmark.naive_embeddings(teacher, images, boxes)

    whole = teacher.encode_image(images[:1])[0]
    inner = (teacher.encode_image(images[1:, :, 8:24, 8:24])[0] +
             teacher.encode_image(images[1:, :, 4:28, 4:28])[0])
    expected = torch.stack([whole, F.normalize(inner, dim=0)])
    assert got.shape == (2, teacher.embed_dim)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_embedding_table_has_the_three_ways_against_the_naive_loop(monkeypatch, capsys):
    small = dict(benchmark.TEACHERS['shapes'], image_size=64, images=2, naive_images=1)
    monkeypatch.setitem(benchmark.TEACHERS, 'shapes', small)
    benchmark.main(['--part', 'embed', '--proposals', '3', '--repeats', '1'])
    out = capsys.readouterr().out
    rows = table_rows(out, '| teacher and setting')
    assert [row[1] for row in rows] == ['naive loop (1 images)', 'crops (encode_regions) (2 images)',
                                       'dense (encode_regions_dense) (2 images)']
    rates = [float(row[2]) for row in rows]
    assert all(rate > 0 for rate in rates)
    assert rows[0][3] == '1.0x'
    for row, rate in zip(rows[1:], rates[1:]):  # ratio = this way's rate / the naive rate
        assert float(row[3].rstrip('x')) == pytest.approx(rate / rates[0], rel=0.05, abs=0.06)
        assert -1.0 <= float(row[4].split()[0]) <= 1.0
    assert out.startswith('device: cpu')


def test_unknown_teacher_is_named(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(['--teachers', 'shapes,rn50x64'])
    assert "unknown ['rn50x64']" in capsys.readouterr().err


def test_data_root_without_shapes_annotations_is_refused(tmp_path):
    with pytest.raises(SystemExit, match='instances_train_base.json does not exist'):
        benchmark.main(['--part', 'train', '--data-root', str(tmp_path)])


@pytest.mark.slow
def test_training_table_times_every_student_against_the_plain_detector(shapes_root, capsys):
    benchmark.main(['--part', 'train', '--steps', '1', '--train-images', '6', '--proposals',
                    '4', '--data-root', str(shapes_root)])
    out = capsys.readouterr().out
    rows = table_rows(out, '| model')
    assert [row[0] for row in rows] == [name for name, _ in benchmark.STUDENTS]
    medians = [float(row[1]) for row in rows]
    assert all(ms > 0 for ms in medians)
    assert rows[0][3] == '1.00x' and rows[0][4] == '1.00x'
    for row, ms in zip(rows[1:], medians[1:]):  # one step: median = min
        assert float(row[3].rstrip('x')) == pytest.approx(ms / medians[0], rel=0.05, abs=0.02)
    # the images of the 6 that have a base-class box (the training set's filter)
    cached = int(re.search(r'region cache of (\d+) images built in', out).group(1))
    assert 0 < cached <= 6
