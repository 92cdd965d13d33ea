"""``zoo://NAME`` wherever vlkd takes a checkpoint path (teachers, proposal detectors, tools)."""
import random

import pytest

from vlkd.checkpoint import resolve_checkpoint


def test_zoo_uri_resolves_to_the_verified_cached_file(server, sandbox):
    data = random.Random(0).randbytes(50_000)
    url = server.add('/z/m.pth', data)
    sandbox.manifest(sandbox.entry('tiny', [url], data))
    path = resolve_checkpoint('zoo://tiny')
    assert path.read_bytes() == data
    assert resolve_checkpoint('zoo://tiny') == path
    assert len(server.requests_for('/z/m.pth')) == 1  # the second call used the cache


def test_work_dir_and_missing_paths(tmp_path):
    (tmp_path / 'iter_4.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert resolve_checkpoint(tmp_path) == tmp_path / 'iter_4.pth'
    with pytest.raises(FileNotFoundError, match='does not exist'):
        resolve_checkpoint(tmp_path / 'nope.pth')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='last_checkpoint'):
        resolve_checkpoint(empty)
