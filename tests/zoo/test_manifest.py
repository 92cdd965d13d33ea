"""The committed manifest (model_zoo/) and README, and manifest validation."""
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from vlkd import zoo

REPO = Path(__file__).resolve().parents[2]
MODEL_ZOO = REPO / 'model_zoo'


def test_committed_manifest_loads_with_unique_names():
    manifest = zoo.load_manifest(MODEL_ZOO)

    assert {family.name for family in manifest.families} >= {'clip_teachers', 'vlkd'}
    assert {'clip-vit-b-32-openai', 'clip-vit-b-16-openai', 'clip-rn50-openai',
            'clip-vit-b-32-laion2b-s34b-b79k'} <= set(manifest.entries)


def test_openai_sha256_is_the_one_embedded_in_every_mirror_url():
    openai = [e for e in zoo.load_manifest(MODEL_ZOO) if e.name.endswith('-openai')]
    assert len(openai) == 3
    for entry in openai:
        for url in entry.urls:
            assert re.search(r'/clip/models/([0-9a-f]{64})/', url).group(1) == entry.sha256
            assert Path(urlparse(url).path).name == entry.filename  # same file on each mirror
        assert entry.size is not None and entry.format == 'torchscript'


def test_every_entry_records_metrics_with_a_command_and_an_open_clip_model():
    import open_clip
    models = set(open_clip.list_models())
    for entry in zoo.load_manifest(MODEL_ZOO):
        if entry.family != 'clip_teachers':
            continue
        assert entry.metrics and all(m['command'] for m in entry.metrics)
        assert entry.load['model_name'] in models  # the config a teacher builds


def test_committed_readme_is_generated_from_the_manifest():
    expected = zoo.render_readme(MODEL_ZOO)
    assert (MODEL_ZOO / 'README.md').read_text() == expected, (
        'model_zoo/README.md is out of date: run `python tools/zoo.py readme > '
        'model_zoo/README.md`.')


@pytest.mark.parametrize('change, complaint', [
    (dict(sha256='abc'), 'sha256 must be 64 lowercase hex'),
    (dict(urls='http://x/m.pth'), 'urls must be a non-empty list'),
    (dict(urls=['ftp://x/m.pth']), 'is not an http(s) URL'),
    (dict(size=-1), 'size must be a positive number'),
    (dict(name='Bad Name'), 'name must match'),
    (dict(colour='red'), "unknown keys ['colour']"),
    (dict(metrics=[dict(name='mAP', value=1.0)]), 'each metric needs name, value, command'),
])
def test_invalid_entries_are_reported_with_their_file(sandbox, change, complaint):
    path = sandbox.manifest(dict(sandbox.entry('tiny', ['http://x/m.pth'], b'x'), **change))

    with pytest.raises(zoo.ManifestError) as caught:
        zoo.load_manifest()
    assert complaint in str(caught.value)
    assert str(path) in str(caught.value)


def test_duplicate_names_across_family_files_are_refused(sandbox):
    sandbox.manifest(sandbox.entry('tiny', ['http://x/m.pth'], b'x'))
    (sandbox.manifest_dir / 'other.yaml').write_text(
        (sandbox.manifest_dir / 'test.yaml').read_text())

    with pytest.raises(zoo.ManifestError, match="'tiny' appears in both"):
        zoo.load_manifest()


def test_missing_manifest_location_says_how_to_point_at_one(tmp_path):
    with pytest.raises(zoo.ManifestError, match='VLKD_ZOO_MANIFEST'):
        zoo.load_manifest(tmp_path / 'nowhere')
