# CoOp on vlkd-shapes crops, base-to-novel: 4 shared context vectors initialised from "a
# picture of a" (the tiny teacher learned only caption-like wording; from random vectors
# CoOp needs far more than a CPU budget of steps), class token at the end, trained on 16
# shots of the 9 base classes (CoOp: SGD, cosine, one warm-up epoch).
#   python tools/train.py configs/prompt/coop_shapes.py
# Variants: model.class_position=middle|front; random context: model.context_init=None
# model.num_context=8; class-specific contexts: coop_csc_shapes.py.
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='CoOp', context_init='a picture of a', class_position='end', template='{}.')

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
