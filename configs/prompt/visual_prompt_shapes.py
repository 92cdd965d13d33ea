# Visual prompting with a padding prompt (Bahng et al.): a learnable 4 px frame added to the
# 32 px teacher input (30 of 224 px in the paper); SGD with a large learning rate, as there.
#   python tools/train.py configs/prompt/visual_prompt_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='VisualPaddingPrompt', pad_size=4)

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=40.0, momentum=0.9, weight_decay=0.0))
param_scheduler = [
    # one warm-up epoch (epoch 0) at half the lr: mmengine's ConstantLR restores the lr
    # at step end - 1, so end=1 would keep it halved for the whole schedule
    dict(type='ConstantLR', factor=0.5, by_epoch=True, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs),
]
