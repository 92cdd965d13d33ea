"""Write detector region files of a vlkd-shapes split (for region-based pretraining).

    python tools/extract_regions.py --data-root data/shapes --split train \
        --checkpoint work_dirs/vild_text_r18_fpn_shapes [--gt-boxes] [--num-regions 10]

The detector is a checkpoint (or work_dir) of a two-stage detector trained by
tools/train.py, e.g. ViLD-text on the base-class boxes; it is rebuilt from the config saved
in the checkpoint unless --config is given. Without --gt-boxes the regions are its top
--num-regions RPN proposals; with it, the ground-truth boxes of the split with the
detector's RoI features. Output (default DATA_ROOT/regions/{proposals,gt_boxes}/SPLIT):
{img_id}.npz per image + meta.json; see vlkd/datasets/region_extraction.py.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from vlkd.datasets.region_extraction import extract_shapes_regions  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', required=True, help='a vlkd-shapes directory')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--checkpoint', required=True,
                        help='detector checkpoint file or work_dir (or zoo://NAME)')
    parser.add_argument('--config', help='detector config (default: the one in the checkpoint)')
    parser.add_argument('--gt-boxes', action='store_true',
                        help='regions are the ground-truth boxes instead of RPN proposals')
    parser.add_argument('--num-regions', type=int, default=10,
                        help='proposals kept per image (without --gt-boxes)')
    parser.add_argument('--feature-layer', default='projection',
                        help="box-head layer whose input is the region feature: 'projection' "
                             "(vlkd's ViLD head) or 'fc_cls' (mmdet's Shared2FC head)")
    parser.add_argument('--out', help='output directory')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--device', default='cpu', help="e.g. 'cuda'")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    mode = 'gt_boxes' if args.gt_boxes else 'proposals'
    out = Path(args.out or Path(args.data_root) / 'regions' / mode / args.split)
    existed = (out / 'meta.json').is_file()
    start = time.time()
    try:
        out = extract_shapes_regions(out, args.data_root, args.split, args.checkpoint,
                                     config=args.config, mode=mode,
                                     num_regions=args.num_regions,
                                     feature_layer=args.feature_layer,
                                     batch_size=args.batch_size, device=args.device)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        sys.exit(f'error: {error}')
    action = 'reused' if existed else f'extracted in {time.time() - start:.1f} s'
    print(f'{mode} region files of {args.split} at {out} ({action})')


if __name__ == '__main__':
    main()
