"""Generate vlkd-shapes-video (see vlkd/datasets/shapes_video.py for the layout and motions).

    python tools/make_shapes_video.py --out data/shapes_video --seed 0

Reuses DIR when it already holds the same clips; refuses a DIR that holds anything else.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from vlkd.datasets.shapes import SHAPES_SPLITS  # noqa: E402
from vlkd.datasets.shapes_video import (MOTIONS, default_shapes_video_root,  # noqa: E402
                                        generate_shapes_video, load_shapes_video_meta)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', help='output directory (default: '
                                      '$VLKD_HOME/data/shapes-video-<hash>)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=1000, help='train clips')
    parser.add_argument('--num-val', type=int, default=100, help='val clips')
    parser.add_argument('--num-test', type=int, default=100, help='test clips')
    parser.add_argument('--image-size', type=int, default=64, help='frame side in pixels')
    parser.add_argument('--num-frames', type=int, default=8, help='frames of the longest clip')
    parser.add_argument('--min-frames', type=int, default=None,
                        help='frames of the shortest clip (default: --num-frames)')
    parser.add_argument('--max-objects', type=int, default=3, help='most shapes per clip')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    params = dict(seed=args.seed, num_train=args.num_train, num_val=args.num_val,
                  num_test=args.num_test, image_size=args.image_size,
                  num_frames=args.num_frames, min_frames=args.min_frames,
                  max_objects=args.max_objects)
    try:
        out = Path(args.out) if args.out else default_shapes_video_root(**params)
        existed = (out / 'meta.json').is_file()
        start = time.time()
        root = generate_shapes_video(out, **params)
    except (FileExistsError, ValueError, TypeError) as error:
        sys.exit(f'error: {error}')
    action = 'reused' if existed else f'generated in {time.time() - start:.1f} s'
    counts = load_shapes_video_meta(root)['counts']

    print(f'vlkd-shapes-video at {root} ({action})')
    print(f"{'motion':<17}" + ''.join(f'{s:>7}' for s in SHAPES_SPLITS))
    for motion in MOTIONS:
        print(f'{motion:<17}' + ''.join(f"{counts[s]['per_motion'][motion]:>7}"
                                        for s in SHAPES_SPLITS))
    for key in ('videos', 'frames', 'captions'):
        print(f'{key:<17}' + ''.join(f'{counts[s][key]:>7}' for s in SHAPES_SPLITS))


if __name__ == '__main__':
    main()
