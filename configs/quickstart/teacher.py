# Quickstart stage 1: pretrain the tiny CLIP teacher on vlkd-shapes captions.
_base_ = '../pretrain/clip_shapes_tiny.py'
work_dir = 'work_dirs/quickstart/teacher'
