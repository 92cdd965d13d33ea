"""The vlkd model zoo from the command line (a thin layer over :mod:`vlkd.zoo`).

    python tools/zoo.py list                       # name, task, size, cached?
    python tools/zoo.py info NAME
    python tools/zoo.py download NAME [--dir D] [--trust-unverified]
    python tools/zoo.py verify [NAME] [--dir D]    # re-check local files against the manifest
    python tools/zoo.py readme > model_zoo/README.md

--manifest PATH, given before the command, reads another manifest (a family file or a folder;
default $VLKD_ZOO_MANIFEST, else model_zoo/). Files are cached in $VLKD_HOME (default
~/.cache/vlkd); VLKD_OFFLINE=1 (or --offline) forbids downloads.
"""
import argparse
import logging
import sys

from vlkd import zoo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--manifest', help='manifest file or folder (default: '
                        '$VLKD_ZOO_MANIFEST, else model_zoo/)')
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('list', help='list the entries: name, task, size, cached?')
    info = commands.add_parser('info', help='everything the manifest says about one entry')
    info.add_argument('name')
    download = commands.add_parser('download', help='download and verify one entry')
    download.add_argument('name')
    download.add_argument('--dir', help='put the file in this folder instead of the cache')
    download.add_argument('--trust-unverified', action='store_true',
                          help='store a file whose entry has no sha256 (its sha256 is printed)')
    download.add_argument('--offline', action='store_true', default=None,
                          help='do not download; only check the local file')
    download.add_argument('--timeout', type=float, default=30.0,
                          help='seconds to wait for a connection or for data (default 30)')
    download.add_argument('--retries', type=int, default=3, help='attempts per mirror')
    download.add_argument('--no-progress', action='store_true', help='no progress bar')
    verify = commands.add_parser('verify', help='check local files against the manifest')
    verify.add_argument('name', nargs='?', help='one entry (default: every entry)')
    verify.add_argument('--dir', help='check the files in this folder instead of the cache')
    commands.add_parser('readme', help='print model_zoo/README.md generated from the manifest')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run one command; returns the exit status (0: success, 1: failure)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    try:
        manifest = zoo.get_manifest(args.manifest)
        return COMMANDS[args.command](args, manifest)
    except zoo.ZooError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1


def cmd_list(args, manifest) -> int:
    rows = [('NAME', 'TASK', 'SIZE', 'CACHED')]
    for entry in manifest:
        path = zoo.cache_path(entry)
        cached = 'yes' if path.is_file() else (
            'partial' if path.with_name(path.name + '.part').is_file() else 'no')
        rows.append((entry.name, entry.task, _size(entry.size), cached))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) + '  ' + row[3])
    return 0


def cmd_info(args, manifest) -> int:
    entry = manifest.get(args.name)
    path = zoo.cache_path(entry)
    fields = [('name', entry.name), ('family', f'{entry.family} ({entry.source})'),
              ('task', entry.task), ('config', entry.config), ('format', entry.format),
              ('load', entry.load or None), ('file', entry.filename),
              ('size', f'{entry.size} bytes' if entry.size else 'unknown'),
              ('sha256', entry.sha256 or 'unknown (download needs --trust-unverified)'),
              ('license', entry.license), ('training data', entry.training_data),
              ('notes', ' '.join(str(entry.notes).split()) if entry.notes else None),
              ('cache', f'{path} ({"present" if path.is_file() else "not downloaded"})')]
    for key, value in fields:
        if value is not None:
            print(f'{key + ":":15}{value}')
    print('urls:')
    for url in entry.urls:
        print(f'  {url}')
    for metric in entry.metrics:
        print(f'metric:        {metric["name"]} = {metric["value"]}{metric.get("unit", "")}')
        print(f'  command:     {metric["command"]}')
        if metric.get('source'):
            print(f'  source:      {metric["source"]}')
    return 0


def cmd_download(args, manifest) -> int:
    path = zoo.download(args.name, args.dir, manifest=manifest,
                        allow_unverified=args.trust_unverified, offline=args.offline,
                        timeout=args.timeout, retries=args.retries,
                        progress=False if args.no_progress else None)
    print(path)
    return 0


def cmd_verify(args, manifest) -> int:
    states = zoo.verify(args.name, dir=args.dir, manifest=manifest)
    failed = False
    width = max((len(state.name) for state in states), default=0)
    for state in states:
        print(f'{state.status:10} {state.name:{width}}  {state.path}  {state.detail}')
        failed |= state.status in ('mismatch', 'unverified') or (
            args.name is not None and state.status == 'missing')
    return 1 if failed else 0


def cmd_readme(args, manifest) -> int:
    sys.stdout.write(zoo.render_readme(manifest))
    return 0


def _size(size) -> str:
    return f'{size / 2 ** 20:.1f} MiB' if size else 'unknown'


COMMANDS = dict(list=cmd_list, info=cmd_info, download=cmd_download, verify=cmd_verify,
                readme=cmd_readme)

if __name__ == '__main__':
    sys.exit(main())
