"""tools/publish_model.py: strip a training checkpoint, name it by its sha256, add the manifest
entry; then the zoo downloads and verifies the published file from the loopback server."""
import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch

from vlkd import zoo

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('vlkd_tools_publish_model',
                                              ROOT / 'tools' / 'publish_model.py')
publish_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(publish_tool)


@pytest.fixture
def training_checkpoint(tmp_path):
    """What an mmengine run saves: weights, optimizer and scheduler state, message hub, meta."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1, 'iter': 10, 'cfg': "model = dict(type='Toy')",
                         'experiment_name': 'toy_20261125_140201', 'time': '20261125_140559'},
                'state_dict': model.state_dict(), 'optimizer': optimizer.state_dict(),
                'param_schedulers': [{'last_step': 10}],
                'message_hub': {'log_scalars': {'loss': [0.5, 0.4]}}}, path)
    return path, model.state_dict()


def test_publish_strips_names_and_registers_a_downloadable_file(
        training_checkpoint, server, sandbox, tmp_path):
    checkpoint_path, weights = training_checkpoint
    manifest_dir = tmp_path / 'model_zoo'
    manifest_dir.mkdir()
    (manifest_dir / 'vlkd.yaml').write_text('# vlkd checkpoints: written by publish_model.\n'
                                            'family: vlkd\nmodels: []\n')
    (manifest_dir / 'README.md').write_text('stale\n')

    entry = publish_tool.main([
        str(checkpoint_path), 'toy-student', '--task', 'toy regression',
        '--url-prefix', server.url('/releases/'), '--url-prefix', server.url('/mirror'),
        '--config', 'configs/quickstart/toy.py', '--metric', 'toy/mse=0.25',
        '--out-dir', str(tmp_path / 'out'), '--manifest-dir', str(manifest_dir)])

    [published] = (tmp_path / 'out').iterdir()  # and no temporary file left
    sha256 = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f'toy-student-{sha256[:8]}.pth'
    assert entry['sha256'] == sha256 and entry['size'] == published.stat().st_size
    saved = torch.load(published, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}  # optimizer, schedulers, message hub gone
    assert saved['meta'] == {'epoch': 1, 'iter': 10, 'cfg': "model = dict(type='Toy')"}
    assert all(torch.equal(saved['state_dict'][k], v) for k, v in weights.items())

    family_text = (manifest_dir / 'vlkd.yaml').read_text()
    assert family_text.startswith('# vlkd checkpoints: written by publish_model.\n')
    listed = zoo.get_entry('toy-student', manifest=manifest_dir)
    assert listed.urls == (server.url(f'/releases/{published.name}'),
                           server.url(f'/mirror/{published.name}'))
    assert listed.config == 'configs/quickstart/toy.py'
    assert listed.metrics[0]['value'] == 0.25
    assert 'tools/test.py configs/quickstart/toy.py' in listed.metrics[0]['command']
    assert (manifest_dir / 'README.md').read_text() == zoo.render_readme(manifest_dir)

    server.add(f'/mirror/{published.name}', published.read_bytes())  # first URL: 404
    path = zoo.download('toy-student', manifest=manifest_dir, timeout=2.0, retries=1,
                        progress=False)
    assert path.read_bytes() == published.read_bytes()


def test_publishing_an_existing_name_needs_force(training_checkpoint, tmp_path):
    checkpoint_path, _ = training_checkpoint
    args = [str(checkpoint_path), 'toy-student', '--task', 'toy', '--url-prefix',
            'https://example.org/zoo', '--out-dir', str(tmp_path / 'out'),
            '--manifest-dir', str(tmp_path / 'model_zoo')]
    publish_tool.main(args)

    with pytest.raises(SystemExit, match='already in'):
        publish_tool.main(args)
    publish_tool.main(args + ['--force', '--task', 'toy, again'])
    assert zoo.get_entry('toy-student', manifest=tmp_path / 'model_zoo').task == 'toy, again'
    assert len(zoo.load_manifest(tmp_path / 'model_zoo')) == 1


def test_metric_without_a_command_is_refused(training_checkpoint, tmp_path):
    checkpoint_path, _ = training_checkpoint
    with pytest.raises(SystemExit, match='--metric needs --config or --metric-command'):
        publish_tool.main([str(checkpoint_path), 'toy', '--task', 'toy', '--url-prefix',
                           'https://example.org', '--metric', 'mse=1',
                           '--manifest-dir', str(tmp_path / 'model_zoo')])


def test_two_runs_of_one_command_publish_the_same_file(training_checkpoint, tmp_path):
    """Checkpoints that differ only in mmengine's timestamps give the same file and sha256."""
    checkpoint_path, _ = training_checkpoint
    second = torch.load(checkpoint_path, weights_only=True)
    second['meta'].update(experiment_name='toy_20261126_090000', time='20261126_091500')
    second_path = tmp_path / 'second.pth'
    torch.save(second, second_path)
    entries = []
    for i, path in enumerate((checkpoint_path, second_path)):
        entries.append(publish_tool.main([
            str(path), f'toy-{i}', '--task', 'toy', '--url-prefix', 'https://example.org/z',
            '--out-dir', str(tmp_path / f'out{i}'), '--manifest-dir', str(tmp_path / 'zoo')]))
    assert entries[0]['sha256'] == entries[1]['sha256']
    assert entries[0]['size'] == entries[1]['size']
