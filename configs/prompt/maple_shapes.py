# MaPLe on vlkd-shapes crops, base-to-novel: text prompts initialised from "a picture of a",
# deep text prompts and coupled visual prompts in every layer of the ViT teacher of
# configs/prompt/clip_vit_shapes_tiny.py (depth=None: all layers of the shallower tower).
#   python tools/train.py configs/prompt/clip_vit_shapes_tiny.py   # the ViT teacher
#   python tools/train.py configs/prompt/maple_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='MaPLe', context_init='a picture of a', depth=None,
             teacher=dict(type='VLKDTeacher', checkpoint='work_dirs/clip_vit_shapes_tiny'))

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.0035, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
