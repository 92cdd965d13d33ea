# CLIP-Adapter on vlkd-shapes crops, base-to-novel: residual bottleneck MLP (D -> D/4 -> D)
# on the image embedding, mixed with ratio 0.2; classes by the teacher's templates.
#   python tools/train.py configs/prompt/clip_adapter_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='CLIPAdapter', reduction=4, ratio=0.2)

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
