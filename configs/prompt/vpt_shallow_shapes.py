# VPT-shallow on vlkd-shapes crops, base-to-novel: 8 prompt tokens at the input of the ViT
# teacher of configs/prompt/clip_vit_shapes_tiny.py; classes by the teacher's templates.
#   python tools/train.py configs/prompt/clip_vit_shapes_tiny.py   # the ViT teacher
#   python tools/train.py configs/prompt/vpt_shallow_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='VPT', num_prompts=8, deep=False,
             teacher=dict(type='VLKDTeacher', checkpoint='work_dirs/clip_vit_shapes_tiny'))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.25, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
