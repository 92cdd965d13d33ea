# ViLD on OV-LVIS with the 2x schedule (24 epochs, steps after 16 and 22); proposals and
# region cache as in the 1x config (the cache is shared).
_base_ = './vild_mask_r50_fpn_1x_ov_lvis.py'
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1),
]
