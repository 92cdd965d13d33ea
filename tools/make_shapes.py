"""Generate vlkd-shapes (see vlkd/datasets/shapes.py for the layout and the class split).

    python tools/make_shapes.py --out data/shapes --seed 0

Reuses DIR when it already holds the same data; refuses a DIR that holds anything else.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from vlkd.datasets.shapes import (SHAPES_NOVEL_CLASSES, SHAPES_SPLITS,  # noqa: E402
                                  default_shapes_root, generate_shapes, load_shapes_meta)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', help='output directory (default: $VLKD_HOME/data/shapes-<hash>)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=2000, help='train images')
    parser.add_argument('--num-val', type=int, default=200, help='val images')
    parser.add_argument('--num-test', type=int, default=200, help='test images')
    parser.add_argument('--image-size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--max-objects', type=int, default=5, help='most objects per image')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    params = dict(seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                  num_test=args.num_test, image_size=args.image_size,
                  max_objects=args.max_objects)
    out = Path(args.out) if args.out else default_shapes_root(**params)
    existed = (out / 'meta.json').is_file()
    start = time.time()
    try:
        root = generate_shapes(out, **params)
    except (FileExistsError, ValueError, TypeError) as error:
        sys.exit(f'error: {error}')
    action = 'reused' if existed else f'generated in {time.time() - start:.1f} s'
    counts = load_shapes_meta(root)['counts']

    print(f'vlkd-shapes at {root} ({action})')
    print(f"{'class':<10} {'split':<6}" + ''.join(f'{s:>7}' for s in SHAPES_SPLITS))
    for name in counts['train']['per_class']:
        split = 'novel' if name in SHAPES_NOVEL_CLASSES else 'base'
        print(f'{name:<10} {split:<6}' + ''.join(f"{counts[s]['per_class'][name]:>7}"
                                                for s in SHAPES_SPLITS))
    for group in ('base', 'novel'):
        totals = [sum(n for name, n in counts[s]['per_class'].items()
                      if (name in SHAPES_NOVEL_CLASSES) == (group == 'novel'))
                  for s in SHAPES_SPLITS]
        print(f'{group + " instances":<17}' + ''.join(f'{n:>7}' for n in totals))
    for key in ('instances', 'images', 'captions'):
        print(f"{key:<17}" + ''.join(f'{counts[s][key]:>7}' for s in SHAPES_SPLITS))


if __name__ == '__main__':
    main()
