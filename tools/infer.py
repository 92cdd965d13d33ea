"""Detect any list of class names in an image and draw the result.

    python tools/infer.py IMAGE --config CONFIG --checkpoint CKPT_OR_WORK_DIR \
        --classes "star,circle,heart" --out out.png [--score-thr 0.3]
"""
import argparse
import json
import sys
from pathlib import Path

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from vlkd.det.inference import OpenVocabDetector, draw_detections, read_rgb


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='an image file')
    parser.add_argument('--config', required=True, help='the detector config')
    parser.add_argument('--checkpoint', required=True,
                        help='a checkpoint file or the work_dir of a training run')
    parser.add_argument('--classes', help='comma-separated class names to detect '
                        '(default: the test classes of the config)')
    parser.add_argument('--out', required=True, help='where to write the drawn image (.png)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--draw-scale', type=int, default=4,
                        help='enlarge the drawing this many times (small images)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not Path(args.image).is_file():
        sys.exit(f'error: image {args.image} does not exist')
    if not Path(args.config).is_file():
        sys.exit(f'error: config {args.config} does not exist')
    detector = OpenVocabDetector.from_config(args.config, args.checkpoint, args.device)
    if args.classes is not None:
        detector.set_classes([name.strip() for name in args.classes.split(',')])
    result = detector(args.image)
    canvas = draw_detections(read_rgb(args.image), result, args.score_thr, args.draw_scale)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out)
    kept = [dict(name=n, score=round(float(s), 4), bbox=[round(float(v), 1) for v in b])
            for b, s, n in zip(result['bboxes'], result['scores'], result['names'])
            if s >= args.score_thr]
    print(json.dumps(dict(image=args.image, classes=detector.classes, detections=kept),
                     indent=1))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
