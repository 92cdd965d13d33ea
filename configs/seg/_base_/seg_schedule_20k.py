# mmseg's 20k-iteration SGD schedule (poly learning rate), validated every 2000 iterations.
_base_ = ['./seg_runtime.py']
max_iters = 20000
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000))
