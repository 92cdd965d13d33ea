# Quickstart stage 2: ViLD-text with the quickstart teacher.
#   python tools/train.py configs/quickstart/vild_text.py
# The student of configs/vild/vild_text_r18_fpn_shapes.py, except that its backbone starts
# from the teacher's CLIP ResNet trunk instead of random weights (as detectors start from
# pretrained weights in practice): it reaches in 600 iterations what the random ResNet-18
# does not reach in 1500. Trained on base-class boxes only.
_base_ = '../vild/vild_text_r18_fpn_shapes.py'
work_dir = 'work_dirs/quickstart/vild_text'
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/quickstart/teacher')
model = dict(
    # pixels normalised as the teacher's tower expects them (CLIP mean / std, RGB)
    data_preprocessor=dict(mean=[122.770938, 116.7460125, 104.09373615],
                           std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(_delete_=True, type='vlkd.CLIPResNetBackbone', teacher=teacher),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(bbox_head=dict(vocabulary=dict(teacher=teacher))))

max_iters = 600  # 2.4 epochs of the 2000 training images
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# no validation pass while training: the quickstart tests the last checkpoint on the test
# split (python tools/test.py CONFIG work_dirs/quickstart/vild_text)
val_cfg = None
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
