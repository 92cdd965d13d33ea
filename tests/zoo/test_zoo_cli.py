"""tools/zoo.py, called in-process through its ``main(argv)``, against the loopback server."""
import importlib.util
import random
from pathlib import Path

from vlkd import zoo

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('vlkd_tools_zoo', ROOT / 'tools' / 'zoo.py')
zoo_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(zoo_tool)

DATA = random.Random(0).randbytes(30_000)


def table(text):
    """``list`` output as {name: [cells]}."""
    return {line.split()[0]: line.split() for line in text.splitlines()[1:]}


def test_list_download_verify_and_info(server, sandbox, capsys, tmp_path):
    sandbox.manifest(sandbox.entry('tiny', [server.add('/a/m.pth', DATA)], DATA))

    assert zoo_tool.main(['list']) == 0
    assert table(capsys.readouterr().out)['tiny'][-1] == 'no'

    assert zoo_tool.main(['download', 'tiny', '--dir', str(tmp_path / 'd'), '--no-progress']) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / 'd' / 'm.pth')
    assert (tmp_path / 'd' / 'm.pth').read_bytes() == DATA
    assert zoo_tool.main(['list']) == 0
    assert table(capsys.readouterr().out)['tiny'][-1] == 'no'  # --dir leaves the cache alone

    assert zoo_tool.main(['download', 'tiny', '--no-progress']) == 0
    capsys.readouterr()
    assert zoo_tool.main(['list']) == 0
    assert table(capsys.readouterr().out)['tiny'][-1] == 'yes'
    assert zoo_tool.main(['verify', 'tiny']) == 0
    assert capsys.readouterr().out.startswith('ok')

    zoo.cache_path(zoo.get_entry('tiny')).write_bytes(b'?' * len(DATA))
    assert zoo_tool.main(['verify']) == 1
    assert capsys.readouterr().out.startswith('mismatch')

    assert zoo_tool.main(['info', 'tiny']) == 0
    info = capsys.readouterr().out
    assert zoo.get_entry('tiny').sha256 in info and server.url('/a/m.pth') in info


def test_errors_are_reported_without_a_traceback(sandbox, capsys):
    sandbox.manifest(sandbox.entry('tiny', ['http://127.0.0.1:9/m.pth'], DATA))

    assert zoo_tool.main(['info', 'tinny']) == 1
    assert 'Did you mean tiny?' in capsys.readouterr().err
    assert zoo_tool.main(['download', 'tiny', '--offline']) == 1
    assert 'offline mode is on' in capsys.readouterr().err


def test_readme_command_prints_the_generated_readme(sandbox, capsys):
    sandbox.manifest(sandbox.entry('tiny', ['http://127.0.0.1:9/m.pth'], DATA))

    assert zoo_tool.main(['readme']) == 0
    readme = capsys.readouterr().out
    assert readme == zoo.render_readme()
    assert '| [`tiny`](#tiny) | test file | 29.3 KiB |' in readme
    assert f'- sha256: `{zoo.get_entry("tiny").sha256}`' in readme
