"""Detect any list of class names in an image or a folder of images.

    python tools/infer.py IMAGE_OR_FOLDER --config CONFIG --checkpoint CKPT_OR_WORK_DIR \
        [--classes "star,circle,heart" | --vocabulary FILE] --out-dir DIR [--score-thr 0.3]

The vocabulary is ``--classes`` (comma-separated names), ``--vocabulary FILE`` (a .txt file
with one class name per line, or a class-embedding file .pt/.pth written by
tools/embed_text.py with the detector's teacher), or by default the config's test classes.

``--out-dir DIR`` receives the images with their boxes drawn (same relative paths, .png) and
``results.json`` in the COCO format: ``images`` (ids, file names relative to the input
folder, sizes), ``categories`` (the vocabulary, ids from 1) and ``annotations`` (every
detection, with its score). Only detections scoring at least ``--score-thr`` are drawn.
For a single image, ``--out FILE.png`` writes just the drawing and prints the detections.
"""
import argparse
import json
import sys
from pathlib import Path

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
from vlkd.det.inference import (OpenVocabDetector, coco_detections, draw_detections,
                                list_images, read_rgb)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='an image file or a folder of images')
    parser.add_argument('--config', required=True, help='the detector config')
    parser.add_argument('--checkpoint', required=True,
                        help='a checkpoint file or the work_dir of a training run')
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument('--classes', help='comma-separated class names to detect')
    vocabulary.add_argument('--vocabulary', help='a .txt file with one class name per line, '
                            'or a class-embedding file (.pt/.pth) from tools/embed_text.py')
    parser.add_argument('--out-dir', help='folder for the drawn images and results.json')
    parser.add_argument('--out', help='single image only: where to write the drawing (.png)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw (and print) detections scoring at least this')
    parser.add_argument('--draw-scale', type=int, default=4,
                        help='enlarge the drawing this many times (small images)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not Path(args.config).is_file():
        sys.exit(f'error: config {args.config} does not exist')
    if not Path(args.input).exists():
        sys.exit(f'error: {args.input} does not exist')
    if args.out is None and args.out_dir is None:
        sys.exit('error: give --out-dir DIR (or --out FILE.png for a single image)')
    if args.out is not None and not Path(args.input).is_file():
        sys.exit('error: --out takes one drawing; for a folder use --out-dir')
    classes = None
    if args.classes is not None:
        classes = [name.strip() for name in args.classes.split(',')]
    detector = OpenVocabDetector.from_config(args.config, args.checkpoint, args.device,
                                             classes=classes, vocabulary=args.vocabulary)
    root = Path(args.input) if Path(args.input).is_dir() else Path(args.input).parent
    out_dir = None if args.out_dir is None else Path(args.out_dir)
    records = []
    for path in list_images(args.input):
        result = detector(path)
        rgb = read_rgb(path)
        relative = path.relative_to(root)
        records.append(dict(file_name=relative.as_posix(), height=rgb.shape[0],
                            width=rgb.shape[1], result=result))
        canvas = draw_detections(rgb, result, args.score_thr, args.draw_scale)
        targets = [] if out_dir is None else [out_dir / relative.with_suffix('.png')]
        targets += [] if args.out is None else [Path(args.out)]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            canvas.save(target)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        results_file = out_dir / 'results.json'
        coco = coco_detections(records, detector.classes)
        results_file.write_text(json.dumps(coco))
        print(f'{len(records)} images, {len(coco["annotations"])} detections of '
              f'{len(detector.classes)} classes; wrote {results_file} and the drawings in '
              f'{out_dir}')
    if len(records) == 1:
        result = records[0]['result']
        kept = [dict(name=n, score=round(float(s), 4), bbox=[round(float(v), 1) for v in b])
                for b, s, n in zip(result['bboxes'], result['scores'], result['names'])
                if s >= args.score_thr]
        print(json.dumps(dict(image=args.input, classes=detector.classes, detections=kept),
                         indent=1))
    if args.out is not None:
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
