# Short iteration-based schedule for the small shapes segmenters on a CPU: 300 iterations of
# batch 8 (1.2 epochs of the 2000 training images; about 7 minutes on half a CPU core, where
# the ground-truth student's loss has levelled off), one validation at the end.
_base_ = ['./seg_runtime.py']
max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per paramwise_cfg setting (mmengine's default: one per parameter)
    constructor='GroupedOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
