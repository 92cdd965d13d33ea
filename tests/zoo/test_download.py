"""vlkd.zoo against a real HTTP server on 127.0.0.1 (tests/zoo/conftest.py): complete and
resumed downloads, checksum mismatch, mirrors, timeouts, offline mode, concurrent processes,
unverified entries and the ``zoo://`` scheme in mmengine."""
import hashlib
import io
import logging
import multiprocessing
import random

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

from vlkd import zoo

FAST = dict(timeout=2.0, retries=2, backoff=0.01, progress=False)


def payload(size, seed=0):
    return random.Random(seed).randbytes(size)


def cached(sandbox, name, filename='m.pth'):
    return sandbox.home / 'zoo' / name / filename


def test_complete_download_is_verified_cached_and_reused(server, sandbox):
    data = payload(200_000)
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', data)], data))

    path = zoo.download('tiny', **FAST)

    assert path == cached(sandbox, 'tiny')
    assert path.read_bytes() == data
    assert not path.with_name('m.pth.part').exists()
    assert zoo.resolve('zoo://tiny', **FAST) == path
    assert server.requests_for('/a/m.pth') == [None]  # the second call used the cache
    assert [s.status for s in zoo.verify('tiny')] == ['ok']


def test_resume_after_the_server_drops_the_connection(server, sandbox):
    data = payload(300_000)
    url = server.add('/a/m.pth', data, plan=[('drop', 100_000)])
    sandbox.manifest(sandbox.entry('tiny', [url], data))

    path = zoo.download('tiny', **FAST)

    assert path.read_bytes() == data
    assert server.requests_for('/a/m.pth') == [None, 'bytes=100000-']


def test_server_that_ignores_range_gets_the_file_rewritten_not_appended(server, sandbox):
    data = payload(150_000)
    url = server.add('/a/m.pth', data, plan=[('drop', 50_000), ('no_range',)])
    sandbox.manifest(sandbox.entry('tiny', [url], data))

    assert zoo.download('tiny', **FAST).read_bytes() == data
    assert server.requests_for('/a/m.pth') == [None, 'bytes=50000-']


def test_partial_file_of_an_interrupted_run_is_resumed(server, sandbox):
    data = payload(120_000)
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', data)], data))
    part = cached(sandbox, 'tiny').with_name('m.pth.part')
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:50_000])

    assert zoo.download('tiny', **FAST).read_bytes() == data
    assert server.requests_for('/a/m.pth') == ['bytes=50000-']


def test_stale_partial_file_is_dropped_when_the_checksum_fails(server, sandbox):
    data = payload(120_000)
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', data)], data))
    part = cached(sandbox, 'tiny').with_name('m.pth.part')
    part.parent.mkdir(parents=True)
    part.write_bytes(payload(50_000, seed=1))  # not the start of this file

    assert zoo.download('tiny', **FAST).read_bytes() == data
    assert server.requests_for('/a/m.pth') == ['bytes=50000-', None]


def test_checksum_mismatch_rejects_the_file_and_leaves_the_cache_untouched(server, sandbox):
    good, bad = payload(50_000, seed=1), payload(80_000, seed=2)
    good_url = server.add('/good/m.pth', good)
    bad_url = server.add('/bad/m.pth', bad, default=('wrong',))
    sandbox.manifest(sandbox.entry('good', [good_url], good),
                     sandbox.entry('bad', [bad_url], bad))
    good_path = zoo.download('good', **FAST)

    with pytest.raises(zoo.ChecksumError) as caught:
        zoo.download('bad', **FAST)

    message = str(caught.value)
    assert hashlib.sha256(bad).hexdigest() in message  # expected
    assert hashlib.sha256(bytes(b ^ 0xFF for b in bad)).hexdigest() in message  # got
    assert bad_url in message
    bad_dir = cached(sandbox, 'bad').parent
    assert sorted(p.name for p in bad_dir.iterdir()) == ['m.pth.lock']  # no file, no .part
    assert good_path.read_bytes() == good
    assert server.requests_for('/bad/m.pth') == [None]  # a wrong file is not fetched again


def test_404_moves_on_to_the_next_mirror(server, sandbox):
    data = payload(60_000)
    missing = server.add('/a/m.pth', data, default=('status', 404))
    mirror = server.add('/b/m.pth', data)
    sandbox.manifest(sandbox.entry('tiny', [missing, mirror], data))

    assert zoo.download('tiny', **FAST).read_bytes() == data
    assert len(server.requests_for('/a/m.pth')) == 1  # a 404 is not retried
    assert len(server.requests_for('/b/m.pth')) == 1


def test_transient_server_error_is_retried_on_the_same_mirror(server, sandbox):
    data = payload(60_000)
    url = server.add('/a/m.pth', data, plan=[('status', 503)])
    sandbox.manifest(sandbox.entry('tiny', [url], data))

    assert zoo.download('tiny', **FAST).read_bytes() == data
    assert len(server.requests_for('/a/m.pth')) == 2


def test_slow_server_times_out_and_the_next_mirror_is_used(server, sandbox):
    data = payload(60_000)
    slow = server.add('/a/m.pth', data, default=('sleep', 10))
    mirror = server.add('/b/m.pth', data)
    sandbox.manifest(sandbox.entry('tiny', [slow, mirror], data))

    path = zoo.download('tiny', **dict(FAST, timeout=1.0))

    assert path.read_bytes() == data
    assert len(server.requests_for('/a/m.pth')) == 2  # both attempts timed out


def test_all_mirrors_failing_lists_each_url_with_its_error(server, sandbox):
    data = payload(10_000)
    missing = server.add('/a/m.pth', data, default=('status', 404))
    slow = server.add('/b/m.pth', data, default=('sleep', 10))
    sandbox.manifest(sandbox.entry('tiny', [missing, slow], data))

    with pytest.raises(zoo.DownloadError) as caught:
        zoo.download('tiny', **dict(FAST, timeout=1.0, retries=1))

    assert not isinstance(caught.value, zoo.ChecksumError)
    message = str(caught.value)
    assert f'{missing}: HTTP 404' in message
    assert f'{slow}: timed out' in message
    assert [url for url, _ in caught.value.failures] == [missing, slow]
    assert not cached(sandbox, 'tiny').exists()


def test_offline_mode_uses_the_cache_or_fails_clearly(server, sandbox, monkeypatch):
    data = payload(40_000)
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', data)], data))

    monkeypatch.setenv('VLKD_OFFLINE', '1')
    with pytest.raises(zoo.OfflineError) as caught:
        zoo.download('tiny', **FAST)
    assert 'VLKD_OFFLINE' in str(caught.value)
    assert str(cached(sandbox, 'tiny')) in str(caught.value)
    assert server.requests_for('/a/m.pth') == []

    path = zoo.download('tiny', offline=False, **FAST)
    assert zoo.download('tiny', **FAST) == path  # offline again: the cached file
    assert len(server.requests_for('/a/m.pth')) == 1

    path.write_bytes(payload(40_000, seed=3))  # damaged, same size
    with pytest.raises(zoo.OfflineError, match='damaged'):
        zoo.download('tiny', **FAST)


def test_damaged_cached_file_is_downloaded_again(server, sandbox):
    data = payload(40_000)
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', data)], data))
    path = zoo.download('tiny', **FAST)
    path.write_bytes(b'x' * len(data))

    assert zoo.resolve('tiny', **FAST).read_bytes() == data
    assert len(server.requests_for('/a/m.pth')) == 2


def _download_in_child(results):
    try:
        results.put(str(zoo.download('tiny', **dict(FAST, timeout=10.0))))
    except Exception as error:  # reported to the parent, which fails the test
        results.put(repr(error))


def test_two_processes_downloading_the_same_file(server, sandbox):
    data = payload(256 * 1024)
    url = server.add('/a/m.pth', data, default=('slow', 16 * 1024, 0.03))  # about 0.5 s
    sandbox.manifest(sandbox.entry('tiny', [url], data))
    context = multiprocessing.get_context('fork')
    results = context.Queue()
    workers = [context.Process(target=_download_in_child, args=(results,)) for _ in range(2)]

    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)

    path = cached(sandbox, 'tiny')
    assert outcomes == [str(path), str(path)]
    assert path.read_bytes() == data
    assert not path.with_name('m.pth.part').exists()
    assert server.requests_for('/a/m.pth') == [None]  # the second found the verified file


def test_entry_without_sha256_needs_explicit_trust(server, sandbox, caplog):
    data = payload(30_000)
    sandbox.manifest(sandbox.entry('open', [server.add('/a/m.pth', data)], data, sha256=None,
                                   size=None))

    with pytest.raises(zoo.UnverifiedError, match='trust-unverified'):
        zoo.download('open', **FAST)
    assert server.requests_for('/a/m.pth') == []  # refused before downloading

    with caplog.at_level(logging.WARNING, logger='vlkd.zoo'):
        path = zoo.download('open', allow_unverified=True, **FAST)
    assert path.read_bytes() == data
    assert hashlib.sha256(data).hexdigest() in caplog.text  # printed, to add to the manifest
    assert zoo.resolve('open', **FAST) == path  # accepted once, checked against that hash
    assert [s.status for s in zoo.verify('open')] == ['trusted']

    path.write_bytes(payload(30_000, seed=4))
    assert [s.status for s in zoo.verify('open')] == ['mismatch']
    with pytest.raises(zoo.UnverifiedError):
        zoo.resolve('open', **FAST)


def test_unknown_name_suggests_close_names(sandbox):
    data = payload(10)
    sandbox.manifest(sandbox.entry('clip-vit-b-32-tiny', ['http://127.0.0.1:9/m.pth'], data))

    with pytest.raises(zoo.UnknownModelError, match="Did you mean clip-vit-b-32-tiny"):
        zoo.download('clip-vit-b32-tiny')


def test_zoo_scheme_loads_a_checkpoint_through_mmengine(server, sandbox):
    torch.manual_seed(0)
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    buffer = io.BytesIO()
    torch.save({'state_dict': source.state_dict(), 'meta': {'epoch': 1}}, buffer)
    data = buffer.getvalue()
    url = server.add('/ckpt/linear.pth', data)
    sandbox.manifest(sandbox.entry('tiny-linear', [url], data))

    zoo.register_zoo_scheme()
    zoo.register_zoo_scheme()  # idempotent
    checkpoint = load_checkpoint(target, 'zoo://tiny-linear', map_location='cpu')

    assert CheckpointLoader._get_checkpoint_loader('zoo://tiny-linear') is zoo.load_from_zoo
    assert checkpoint['meta'] == {'epoch': 1}
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    assert cached(sandbox, 'tiny-linear', 'linear.pth').read_bytes() == data
