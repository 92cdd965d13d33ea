# shapes_seg_schedule.py four times longer: 1200 iterations of batch 8 (4.8 epochs of the
# 2000 training images). The students on the teacher's trunk need it: the ground-truth
# student's seen mIoU (val) is 20.3 after 300 iterations and 45.4 after 1200.
_base_ = ['./shapes_seg_schedule.py']
max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
