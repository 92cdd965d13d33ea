"""Segment an image with any list of class names; write a colour overlay with a legend.

    python tools/segment.py IMAGE --config CONFIG [--checkpoint CKPT_OR_WORK_DIR] \
        [--classes "star,circle,heart" | --vocabulary FILE] --out out.png [--alpha 0.5]

The vocabulary is ``--classes`` (comma-separated names), ``--vocabulary FILE`` (a .txt file
with one class name per line, or a class-embedding file .pt/.pth written by
tools/embed_text.py with the model's teacher), or by default the config's test classes.
A model trained with a background class keeps it in any vocabulary. ``--checkpoint`` is
needed by trained students; a teacher's zero-shot config (configs/seg/teacher_*) runs
without one. The share of the image of each class found is printed.
"""
import argparse
import sys
from pathlib import Path

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from vlkd.det.vocabulary import read_vocabulary_file
from vlkd.seg.inference import OpenVocabSegmenter, draw_segmentation, read_rgb


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='the image file')
    parser.add_argument('--config', required=True, help='the segmentation config')
    parser.add_argument('--checkpoint', help='a checkpoint file or the work_dir of a training '
                        'run (not needed for a teacher zero-shot config)')
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument('--classes', help='comma-separated class names to segment')
    vocabulary.add_argument('--vocabulary', help='a .txt file with one class name per line, '
                            'or a class-embedding file (.pt/.pth) from tools/embed_text.py')
    parser.add_argument('--out', required=True, help='where to write the drawing (.png)')
    parser.add_argument('--alpha', type=float, default=0.5, help='opacity of the overlay')
    parser.add_argument('--draw-scale', type=int, default=1,
                        help='enlarge the drawing this many times (small images)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Segment and draw; returns the result dict (labels, scores, classes)."""
    args = parse_args(argv)
    if not Path(args.config).is_file():
        sys.exit(f'error: config {args.config} does not exist')
    if not Path(args.image).is_file():
        sys.exit(f'error: image {args.image} does not exist')
    segmenter = OpenVocabSegmenter.from_config(args.config, args.checkpoint, args.device)
    if args.classes is not None:
        segmenter.set_classes([name.strip() for name in args.classes.split(',')])
    elif args.vocabulary is not None:
        head = getattr(segmenter.model, 'decode_head', None)
        names, embeddings = read_vocabulary_file(
            args.vocabulary, embed_dim=getattr(head, 'embed_dim', None))
        segmenter.set_classes(names, embeddings)
    result = segmenter(args.image)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_segmentation(read_rgb(args.image), result, args.alpha, args.draw_scale).save(out)
    total = result['labels'].size
    for index, name in enumerate(result['classes']):
        share = (result['labels'] == index).sum() / total
        if share > 0:
            print(f'{name}: {100 * share:.1f}% of the image')
    print(f'wrote {out}')
    return result


if __name__ == '__main__':
    main()
