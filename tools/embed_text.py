"""Embed a vocabulary once and write a class-embedding file that students read
(``embedding_file=...``) instead of running a teacher's text tower.

    # hand-written templates, any teacher
    python tools/embed_text.py --teacher work_dirs/clip_shapes_tiny --templates shapes \
        --classes circle,square,star --out work_dirs/vocab/shapes.pth
    # learned prompts (CoOp, MaPLe) of a configs/prompt training run
    python tools/embed_text.py --prompt-checkpoint work_dirs/coop_shapes \
        --classes data/shapes_names.txt --out work_dirs/vocab/shapes_coop.pth

--teacher is a vlkd pretraining checkpoint or work_dir (or zoo://NAME), a config file
defining ``teacher = dict(type=...)`` (or a model with a ``teacher``), or a teacher config
as JSON ('{"type": "OpenCLIPTeacher", "model_name": "ViT-B-16", "pretrained": "..."}').
With --prompt-checkpoint it replaces the teacher of the training config (it must be the
same teacher, e.g. moved). --classes is a comma-separated list or a file with one name per
line; --class-file reads an ImageFolder class-name file ("<folder> <name>" lines) and
--subset takes its base or novel half. Without a vocabulary, --prompt-checkpoint embeds the
model's test classes.
"""
import argparse
import json
from pathlib import Path

import vlkd  # noqa: F401  (installs the mmcv compatibility layer first)
import torch
from mmengine.config import Config

from vlkd.datasets.class_vocabulary import resolve_classes
from vlkd.teachers import build_teacher, resolve_templates
from vlkd.teachers.class_names import check_class_names
from vlkd.teachers.embedding_file import save_class_embeddings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='the class-embedding file to write')
    parser.add_argument('--teacher', help='the teacher: checkpoint / work_dir / zoo://NAME, '
                        'a config file, or a JSON teacher config')
    parser.add_argument('--prompt-checkpoint', help='a configs/prompt training checkpoint or '
                        'work_dir whose learned prompts embed the classes')
    parser.add_argument('--templates', nargs='+', help="a template set ('shapes', 'photo') or "
                        "templates such as 'a photo of a {}.' (default: the teacher's)")
    parser.add_argument('--classes', help='comma-separated names, or a file of one name per '
                        'line')
    parser.add_argument('--class-file', help='an ImageFolder class-name file')
    parser.add_argument('--subset', choices=['all', 'base', 'novel'], default='all',
                        help='with --class-file: all classes, or the base / novel half')
    parser.add_argument('--device', default='cpu', help="e.g. 'cuda'")
    return parser.parse_args(argv)


def teacher_config(spec: str) -> dict:
    """A teacher config dict from the --teacher argument."""
    if spec.lstrip().startswith('{'):
        try:
            return json.loads(spec)
        except ValueError as err:
            raise ValueError(f'--teacher {spec!r} is not valid JSON: {err}') from err
    if spec.endswith('.py'):
        cfg = Config.fromfile(spec)
        teacher = cfg.get('teacher') or cfg.get('model', {}).get('teacher')
        if teacher is None:
            raise ValueError(f'{spec} defines neither teacher = dict(...) nor a model with a '
                             'teacher.')
        return teacher.to_dict() if hasattr(teacher, 'to_dict') else dict(teacher)
    return dict(type='VLKDTeacher', checkpoint=spec)


def vocabulary(args):
    """The class names asked for, or None."""
    if args.classes and args.class_file:
        raise ValueError('Give --classes or --class-file, not both.')
    if args.class_file:
        return resolve_classes(dict(file=args.class_file, subset=args.subset), '--class-file')
    if not args.classes:
        return None
    path = Path(args.classes)
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding='utf-8').splitlines()]
        return check_class_names([n for n in names if n], f'class list {path}')
    return check_class_names([n.strip() for n in args.classes.split(',')], '--classes list')


def main(argv=None) -> Path:
    """Write the file; returns its path."""
    args = parse_args(argv)
    classes = vocabulary(args)
    teacher = None if args.teacher is None else teacher_config(args.teacher)
    if args.prompt_checkpoint:
        from vlkd.prompt.export import export_class_embeddings, load_prompt_model
        if args.templates:
            raise ValueError('--templates apply to template embeddings; a prompt checkpoint '
                             'embeds with its learned prompts.')
        model = load_prompt_model(args.prompt_checkpoint, teacher).to(args.device)
        classes = list(model.test_classes) if classes is None else classes
        source = f'{type(model).__name__} prompts: {args.prompt_checkpoint}'
        out = export_class_embeddings(model, classes, args.out, source)
    else:
        if teacher is None:
            raise ValueError('Give --teacher (template embeddings) or --prompt-checkpoint '
                             '(learned prompts).')
        if classes is None:
            raise ValueError('Give the vocabulary: --classes or --class-file.')
        built = build_teacher(teacher).to(args.device)
        templates = built.templates if not args.templates else resolve_templates(
            args.templates[0] if len(args.templates) == 1 else args.templates)
        with torch.no_grad():
            embeddings = built.encode_class_names(classes, templates)
        described = ' | '.join(templates) if len(templates) <= 3 else \
            f'{len(templates)} templates ({templates[0]!r}, ...)'
        out = save_class_embeddings(args.out, classes, embeddings, built.fingerprint,
                                    f'templates: {described}')
    print(f'wrote {len(classes)} class embeddings to {out}')
    return out


if __name__ == '__main__':
    main()
