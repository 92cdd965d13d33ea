# The combined student (ground truth + pseudo labels + feature distillation) of a vlkd VLP
# teacher: UniCL instead of CLIP, for the class-name embeddings, the pseudo labels and the
# dense embeddings (its own dense cache).
#   python tools/train.py configs/pretrain/unicl_shapes_tiny.py
#   python tools/train.py configs/seg/deeplabv3plus_r18_combined_unicl_shapes.py
_base_ = ['./deeplabv3plus_r18_combined_shapes.py']

teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/unicl_shapes_tiny')
model = dict(
    decode_head=dict(vocabulary=dict(teacher=teacher)),
    teacher=teacher,
    dense_cache='work_dirs/seg_cache/unicl_shapes_tiny_window40_stride16')
