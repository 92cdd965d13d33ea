# The zero-shot segmentation of a vlkd VLP teacher, UniCL (image-text-label contrast, a
# ResNet-18 grid tower and a BERT-style text tower in one 128-d space), by the same sliding
# window as teacher_zero_shot_shapes.py.
#   python tools/train.py configs/pretrain/unicl_shapes_tiny.py
#   python tools/test.py configs/seg/teacher_zero_shot_unicl_shapes.py
_base_ = ['./teacher_zero_shot_shapes.py']
model = dict(teacher=dict(checkpoint='work_dirs/unicl_shapes_tiny'))
