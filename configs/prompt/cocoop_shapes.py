# CoCoOp on vlkd-shapes crops, base-to-novel: 4 context vectors initialised from "a picture
# of a" plus the meta-network's image-conditional token (CoCoOp: SGD lr 0.002, batch 1;
# here batch 8 to keep CPU time short: each step runs batch x classes prompts).
#   python tools/train.py configs/prompt/cocoop_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='CoCoOp', context_init='a picture of a', template='{}.', meta_reduction=16)

max_epochs = 10
train_dataloader = dict(batch_size=8)
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
