"""The zoo manifest: one YAML (or JSON) file per model family, in ``model_zoo/``.

A family file holds ``family`` (its id), optional ``title`` and ``description``, and
``models``, a list of entries with these keys:

=============== ========================================================================
name            unique id, lowercase: ``[a-z0-9][a-z0-9._-]*`` (used in ``zoo://NAME``)
task            what the model does, in words
urls            one or more mirrors serving the same bytes, tried in order
sha256          hex digest of the file, or null when nobody could compute it yet
size            file size in bytes, or null when unknown
license         the license of the weights
training_data   the data the weights were trained on
config          optional: the config that trained or builds the model
filename        optional: cached file name (default: the last part of the first URL)
format          optional: how the file is stored (mmengine-checkpoint, torchscript, ...)
metrics         optional: list of {name, value, unit, command, source}: what the model
                reached and the command that measures it
load            optional: mapping that tells a loader how to build the model
notes           optional: anything else a user should know
=============== ========================================================================
"""
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlparse

import yaml

from .errors import ManifestError, UnknownModelError

MANIFEST_ENV = 'VLKD_ZOO_MANIFEST'
REPO_MANIFEST_DIR = Path(__file__).resolve().parents[2] / 'model_zoo'
MANIFEST_SUFFIXES = ('.yaml', '.yml', '.json')
ZOO_SCHEME = 'zoo://'

_NAME = re.compile(r'^[a-z0-9][a-z0-9._-]*$')
_SHA256 = re.compile(r'^[0-9a-f]{64}$')
_REQUIRED = ('name', 'task', 'urls', 'sha256', 'size', 'license', 'training_data')
_OPTIONAL = ('config', 'filename', 'format', 'metrics', 'load', 'notes')
_METRIC_REQUIRED = ('name', 'value', 'command')
_METRIC_OPTIONAL = ('unit', 'source')


@dataclass
class ZooEntry:
    """One downloadable file of the zoo, as its manifest describes it."""
    name: str
    family: str
    task: str
    urls: Tuple[str, ...]
    sha256: Optional[str]
    size: Optional[int]
    license: str
    training_data: str
    filename: str
    config: Optional[str] = None
    format: Optional[str] = None
    metrics: Tuple[dict, ...] = ()
    load: dict = field(default_factory=dict)
    notes: Optional[str] = None
    source: Optional[Path] = None


@dataclass
class Family:
    """The entries of one manifest file."""
    name: str
    title: str
    description: str
    source: Path
    entries: List[ZooEntry]


class Manifest:
    """All families found at one manifest location, with lookup by name."""

    def __init__(self, families: List[Family], location: Path):
        self.families = families
        self.location = location
        self.entries: Dict[str, ZooEntry] = {}
        for family in families:
            for entry in family.entries:
                if entry.name in self.entries:
                    raise ManifestError(
                        f'Zoo name {entry.name!r} appears in both '
                        f'{self.entries[entry.name].source} and {entry.source}: names must '
                        'be unique across the manifest; rename one of them.')
                self.entries[entry.name] = entry

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self):
        return len(self.entries)

    def get(self, name_or_uri: str) -> ZooEntry:
        """The entry named ``name_or_uri`` (``NAME`` or ``zoo://NAME``); suggests close names."""
        name = strip_scheme(name_or_uri)
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.5)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise UnknownModelError(
            f'No model named {name!r} in the zoo manifest at {self.location}.{hint} '
            f'`python tools/zoo.py list` shows the {len(self.entries)} available names.')


def strip_scheme(name_or_uri: str) -> str:
    """``zoo://NAME`` -> ``NAME``; a bare name is returned unchanged."""
    name = str(name_or_uri)
    return name[len(ZOO_SCHEME):] if name.startswith(ZOO_SCHEME) else name


def manifest_location(location=None) -> Path:
    """Where the manifest is read from: ``location``, else ``$VLKD_ZOO_MANIFEST``, else the
    repository's ``model_zoo/`` folder. Either a family file or a folder of them."""
    if location is None:
        location = os.environ.get(MANIFEST_ENV) or REPO_MANIFEST_DIR
    return Path(location).expanduser()


def manifest_files(location=None) -> List[Path]:
    """The family files at ``location`` (see :func:`manifest_location`), sorted by name."""
    path = manifest_location(location)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
    raise ManifestError(
        f'Zoo manifest {path} does not exist. Point ${MANIFEST_ENV} (or the manifest '
        'argument) at a family file or a folder of them, such as model_zoo/ in the vlkd '
        'repository.')


def load_manifest(location=None) -> Manifest:
    """Read and check every family file at ``location`` (see :func:`manifest_location`)."""
    return Manifest([load_family(p) for p in manifest_files(location)],
                    manifest_location(location))


def read_family_file(path: Path) -> dict:
    """The raw mapping stored in a family file (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
        data = json.loads(text) if path.suffix == '.json' else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ManifestError(f'Cannot read zoo manifest {path}: {error}') from error
    if not isinstance(data, dict):
        raise ManifestError(f'Zoo manifest {path} must hold a mapping with `family` and '
                            f'`models`, found {type(data).__name__}.')
    return data


def load_family(path: Path) -> Family:
    """Parse and check one family file."""
    path = Path(path)
    data = read_family_file(path)
    unknown = set(data) - {'family', 'title', 'description', 'models'}
    if unknown:
        raise ManifestError(f'{path}: unknown top-level keys {sorted(unknown)}; allowed: '
                            'family, title, description, models.')
    family = data.get('family') or path.stem
    models = data.get('models') or []
    if not isinstance(models, list):
        raise ManifestError(f'{path}: `models` must be a list of entries.')
    entries = [parse_entry(raw, family, path, index) for index, raw in enumerate(models)]
    return Family(name=family, title=data.get('title') or family,
                  description=(data.get('description') or '').strip(), source=path,
                  entries=entries)


def parse_entry(raw, family: str, source: Path, index: int = 0) -> ZooEntry:
    """Check one raw manifest entry and turn it into a :class:`ZooEntry`."""
    where = f'{source}, entry {index}'
    if not isinstance(raw, dict):
        raise ManifestError(f'{where}: an entry must be a mapping, found {raw!r}.')
    if isinstance(raw.get('name'), str):
        where = f'{source}, entry {raw["name"]!r}'
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ManifestError(f'{where}: missing keys {missing}. Every entry needs '
                            f'{", ".join(_REQUIRED)} (sha256 and size may be null).')
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise ManifestError(f'{where}: unknown keys {sorted(unknown)}; allowed: '
                            f'{", ".join(_REQUIRED + _OPTIONAL)}.')
    name = raw['name']
    if not isinstance(name, str) or not _NAME.match(name):
        raise ManifestError(f'{where}: name must match [a-z0-9][a-z0-9._-]*, got {name!r}.')
    urls = raw['urls']
    if isinstance(urls, str) or not isinstance(urls, list) or not urls:
        raise ManifestError(f'{where}: urls must be a non-empty list of http(s) URLs.')
    for url in urls:
        if not isinstance(url, str) or urlparse(url).scheme not in ('http', 'https'):
            raise ManifestError(f'{where}: {url!r} is not an http(s) URL.')
    sha256 = raw['sha256']
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
        raise ManifestError(f'{where}: sha256 must be 64 lowercase hex digits or null, '
                            f'got {sha256!r}.')
    size = raw['size']
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ManifestError(f'{where}: size must be a positive number of bytes or null, '
                            f'got {size!r}.')
    filename = raw.get('filename') or Path(urlparse(urls[0]).path).name
    if not filename or '/' in filename or filename.startswith('.'):
        raise ManifestError(f'{where}: cannot take a file name from {urls[0]!r}; set '
                            '`filename`.')
    load = raw.get('load') or {}
    if not isinstance(load, dict):
        raise ManifestError(f'{where}: load must be a mapping.')
    return ZooEntry(
        name=name, family=family, task=str(raw['task']), urls=tuple(urls), sha256=sha256,
        size=size, license=str(raw['license']), training_data=str(raw['training_data']),
        filename=filename, config=raw.get('config'), format=raw.get('format'),
        metrics=_parse_metrics(raw.get('metrics') or [], where), load=load,
        notes=raw.get('notes'), source=source)


def _parse_metrics(metrics, where: str) -> Tuple[dict, ...]:
    if not isinstance(metrics, list):
        raise ManifestError(f'{where}: metrics must be a list.')
    for metric in metrics:
        if not isinstance(metric, dict) or any(k not in metric for k in _METRIC_REQUIRED):
            raise ManifestError(f'{where}: each metric needs {", ".join(_METRIC_REQUIRED)}, '
                                f'got {metric!r}.')
        unknown = set(metric) - set(_METRIC_REQUIRED) - set(_METRIC_OPTIONAL)
        if unknown:
            raise ManifestError(f'{where}: unknown metric keys {sorted(unknown)}.')
    return tuple(dict(m) for m in metrics)
