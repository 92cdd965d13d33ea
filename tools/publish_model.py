"""Prepare a trained checkpoint for the model zoo and add its manifest entry.

    python tools/publish_model.py CKPT NAME --task TASK --url-prefix URL [--url-prefix URL2]
        [--config CFG] [--family vlkd] [--license L] [--training-data D]
        [--metric KEY=VALUE ...] [--metric-command CMD] [--out-dir DIR]
        [--manifest-dir model_zoo] [--force] [--trust-pickle]

Keeps only the weights (``state_dict``) and ``meta`` of CKPT (optimizer, schedulers, message
hub and EMA buffers are dropped; so are the run's start and save times in ``meta``, so that
the same training command gives a file with the same sha256), saves them as ``OUT_DIR/NAME-<sha256[:8]>.pth``, and writes
the entry (URLs = each prefix + file name, sha256, size, metrics, ...) into
``MANIFEST_DIR/FAMILY.yaml``; README.md in that folder is regenerated. Upload the file to the
URLs afterwards.
"""
import argparse
import io
import os
from pathlib import Path

import torch
import yaml

import vlkd  # noqa: F401  (allow-lists mmengine's checkpoint globals for torch.load)
from vlkd import zoo
from vlkd.zoo.manifest import parse_entry, read_family_file

REPO = Path(__file__).resolve().parents[1]
KEPT_KEYS = ('state_dict', 'meta')
# meta fields that differ between two runs of the same command (mmengine's timestamps)
VOLATILE_META = ('experiment_name', 'time')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='checkpoint written by tools/train.py')
    parser.add_argument('name', help='zoo name, lowercase: [a-z0-9][a-z0-9._-]*')
    parser.add_argument('--task', required=True, help='what the model does, in words')
    parser.add_argument('--url-prefix', action='append', required=True, metavar='URL',
                        help='where the file will be served (repeat for mirrors)')
    parser.add_argument('--config', help='the config that trained the model')
    parser.add_argument('--family', default='vlkd', help='family file to add the entry to')
    parser.add_argument('--license', default='Apache-2.0', help='license of the weights')
    parser.add_argument('--training-data', default='unspecified', help='data trained on')
    parser.add_argument('--metric', action='append', default=[], metavar='KEY=VALUE',
                        help='a metric the model reached, e.g. coco/bbox_mAP_50=0.41')
    parser.add_argument('--metric-command', help='command that measures the metrics '
                        '(default: tools/test.py on the config and the downloaded file)')
    parser.add_argument('--out-dir', default='work_dirs/publish', help='where the file goes')
    parser.add_argument('--manifest-dir', default=str(REPO / 'model_zoo'),
                        help='folder of the family files (default: model_zoo/)')
    parser.add_argument('--force', action='store_true', help='replace an entry of that name')
    parser.add_argument('--trust-pickle', action='store_true',
                        help='load CKPT with weights_only=False (only for files you trust)')
    return parser.parse_args(argv)


def strip_checkpoint(checkpoint) -> dict:
    """Keep ``state_dict`` and ``meta`` (without its timestamps); a bare state dict
    (name -> tensor) is wrapped."""
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        stripped = {key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint}
        if isinstance(stripped.get('meta'), dict):
            stripped['meta'] = {key: value for key, value in stripped['meta'].items()
                                if key not in VOLATILE_META}
        return stripped
    if isinstance(checkpoint, dict) and checkpoint and all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return {'state_dict': checkpoint}
    raise ValueError('The checkpoint holds neither a `state_dict` nor a plain mapping of '
                     'tensors; give a file written by tools/train.py (mmengine).')


def publish(args) -> dict:
    """Write the stripped file and its manifest entry; returns the entry as written."""
    if args.metric and not (args.config or args.metric_command):
        raise SystemExit('error: --metric needs --config or --metric-command, so that the '
                         'entry says how the metric is measured.')
    try:
        checkpoint = torch.load(args.checkpoint, map_location='cpu',
                                weights_only=not args.trust_pickle)
    except Exception as error:  # torch raises several types for refused or broken files
        raise SystemExit(f'error: cannot load {args.checkpoint}: {error}\nIf you made this '
                         'file and trust it, pass --trust-pickle.') from error
    stripped = strip_checkpoint(checkpoint)
    dropped = sorted(set(checkpoint) - set(stripped)) if 'state_dict' in checkpoint else []
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f'{args.name}.pth.tmp'
    # saved through a buffer: torch.save names the archive's folder after the file, which
    # would make the bytes (and the sha256) depend on NAME
    buffer = io.BytesIO()
    torch.save(stripped, buffer)
    temporary.write_bytes(buffer.getvalue())
    sha256 = zoo.sha256_file(temporary)
    final = out_dir / f'{args.name}-{sha256[:8]}.pth'
    os.replace(temporary, final)

    entry = {
        'name': args.name, 'task': args.task, 'config': args.config,
        'format': 'mmengine-checkpoint',
        'urls': [f'{prefix.rstrip("/")}/{final.name}' for prefix in args.url_prefix],
        'sha256': sha256, 'size': final.stat().st_size, 'license': args.license,
        'training_data': args.training_data,
        'metrics': [_metric(text, args) for text in args.metric],
    }
    entry = {key: value for key, value in entry.items() if value not in (None, [])}
    family_file = Path(args.manifest_dir) / f'{args.family}.yaml'
    parse_entry(entry, args.family, family_file)  # raises ManifestError on a bad name or URL
    add_entry(family_file, args.family, entry, force=args.force)
    readme = Path(args.manifest_dir) / 'README.md'
    if readme.exists():
        readme.write_text(zoo.render_readme(args.manifest_dir))
    print(f'Wrote {final} ({entry["size"]} bytes, sha256 {sha256}); dropped keys: '
          f'{", ".join(dropped) or "none"}.\nAdded {args.name!r} to {family_file}. Upload the '
          'file to:\n  ' + '\n  '.join(entry['urls']))
    return entry


def add_entry(family_file: Path, family: str, entry: dict, force: bool = False) -> None:
    """Append ``entry`` to ``family_file`` (created if missing), keeping its header comments.
    A name already in this file is replaced only with ``force``; one in another file is an
    error."""
    if family_file.parent.is_dir():
        for other in zoo.load_manifest(family_file.parent):
            if other.name == entry['name'] and other.source != family_file:
                raise SystemExit(f'error: {entry["name"]!r} is already in {other.source}.')
    header, data = '', {'family': family, 'title': family, 'models': []}
    if family_file.exists():
        lines = family_file.read_text().splitlines(keepends=True)
        header = ''.join(line for line in _leading_comments(lines))
        data = read_family_file(family_file)
        data['models'] = data.get('models') or []
    names = [model.get('name') for model in data['models']]
    if entry['name'] in names:
        if not force:
            raise SystemExit(f'error: {entry["name"]!r} is already in {family_file}; pass '
                             '--force to replace it.')
        data['models'][names.index(entry['name'])] = entry
    else:
        data['models'].append(entry)
    family_file.parent.mkdir(parents=True, exist_ok=True)
    family_file.write_text(header + yaml.safe_dump(data, sort_keys=False, width=100,
                                                   allow_unicode=True))


def _leading_comments(lines):
    for line in lines:
        if not line.startswith('#'):
            return
        yield line


def _metric(text: str, args) -> dict:
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise SystemExit(f'error: --metric {text!r} is not KEY=VALUE.')
    try:
        number = float(value)
    except ValueError:
        raise SystemExit(f'error: --metric {text!r}: {value!r} is not a number.') from None
    command = args.metric_command or (
        f'python tools/test.py {args.config} "$(python tools/zoo.py download {args.name})"')
    return {'name': key, 'value': number, 'command': command}


def main(argv=None) -> dict:
    return publish(parse_args(argv))


if __name__ == '__main__':
    main()
