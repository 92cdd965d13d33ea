"""model_zoo/README.md, generated from the manifest: ``python tools/zoo.py readme``."""
import textwrap
from typing import Optional

from .cache import get_manifest

HEADER = """\
# vlkd model zoo

<!-- Generated from the manifest files in this folder by
     `python tools/zoo.py readme > model_zoo/README.md`; edit those files, not this one. -->

Each family file in this folder (`*.yaml`) lists its checkpoints with their mirrors, sha256,
size, license, training data and the metrics they reached, with the command that measures
them. vlkd checks every file against its sha256 before using it.

```bash
python tools/zoo.py list                    # name, task, size, cached?
python tools/zoo.py info NAME               # everything the manifest says about NAME
python tools/zoo.py download NAME [--dir D] # into the cache, or into D
python tools/zoo.py verify [NAME]           # re-check cached files
```

In Python, `vlkd.zoo.download(name)` (or `vlkd.zoo.resolve('zoo://NAME')`) returns the
verified local file; in a config, `load_from = 'zoo://NAME'` loads it once
`vlkd.zoo.register_zoo_scheme()` has run.

- **Cache**: `$VLKD_HOME/zoo/NAME/` (default `~/.cache/vlkd`). A download goes to a `.part`
  file, is resumed with HTTP Range requests if interrupted, retried with backoff and then
  taken from the next mirror, and is renamed into place only after its sha256 matched. A
  file lock keeps concurrent downloads of the same file from clashing.
- **Offline**: with `VLKD_OFFLINE=1` nothing is downloaded: cached files are used, and a
  missing one is an error that says where to put it.
- **Unknown sha256** (`null` below): such files are only stored with `--trust-unverified`
  (`allow_unverified=True`); the sha256 computed then is printed, to be added to the
  manifest, and checked on every later use.
- **Publishing** a trained checkpoint: `python tools/publish_model.py CKPT NAME ...` strips
  the optimizer state, writes `NAME-<sha256[:8]>.pth` and adds the entry to a family file.
"""


def render_readme(manifest=None) -> str:
    """The README text for ``manifest`` (a :class:`Manifest` or a location; default: the
    repository's ``model_zoo/``)."""
    manifest = get_manifest(manifest)
    parts = [HEADER]
    for family in manifest.families:
        parts.append(f'\n## {family.title}\n\nFamily file: `{family.source.name}`.\n')
        if family.description:
            parts.append(f'\n{textwrap.fill(family.description, 96)}\n')
        if not family.entries:
            parts.append('\nNo entries yet.\n')
            continue
        parts.append('\n| Name | Task | Size | Metrics | License | Training data |\n'
                     '|---|---|---|---|---|---|\n')
        for entry in family.entries:
            metrics = '<br>'.join(_metric_value(m) for m in entry.metrics) or '-'
            parts.append(f'| [`{entry.name}`](#{entry.name.replace(".", "")}) | {entry.task} | '
                         f'{_size(entry.size)} | {metrics} | {entry.license} | '
                         f'{entry.training_data} |\n')
        for entry in family.entries:
            parts.append(_details(entry))
    return ''.join(parts)


def _details(entry) -> str:
    lines = [f'\n### {entry.name}\n']
    if entry.config:
        lines.append(f'- config: `{entry.config}`')
    if entry.format:
        lines.append(f'- format: {entry.format}')
    if entry.load:
        lines.append('- load: ' + ', '.join(f'{k}=`{v}`' for k, v in entry.load.items()))
    lines.append(f'- file: `{entry.filename}`, '
                 + (f'{entry.size:,} bytes' if entry.size else 'size unknown'))
    lines.append(f'- sha256: `{entry.sha256}`' if entry.sha256 else
                 '- sha256: unknown (download needs `--trust-unverified`)')
    lines.append('- URLs (mirrors, tried in order):')
    lines.extend(f'  - <{url}>' for url in entry.urls)
    for metric in entry.metrics:
        source = f' Source: {metric["source"]}.' if metric.get('source') else ''
        lines.append(f'- {metric["name"]}: {_metric_value(metric, with_name=False)}, measured '
                     f'with `{metric["command"]}`.{source}')
    if entry.notes:
        lines.append(textwrap.fill(f'- notes: {entry.notes}', 96, subsequent_indent='  '))
    return '\n'.join(lines) + '\n'


def _metric_value(metric, with_name: bool = True) -> str:
    value = f'{metric["value"]}{metric.get("unit", "")}'
    return f'{metric["name"]} {value}' if with_name else value


def _size(size: Optional[int]) -> str:
    if size is None:
        return 'unknown'
    for unit, scale in (('GiB', 2 ** 30), ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if size >= scale:
            return f'{size / scale:.1f} {unit}'
    return f'{size} B'
