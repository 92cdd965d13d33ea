# Quickstart stage 3: ViLD = the ViLD-text student of stage 2 (same backbone start, same
# schedule) plus L1 distillation of the teacher's embeddings of proposal crops.
#   python tools/train.py configs/quickstart/vild.py
# Proposals come from the stage-2 detector; the teacher embeds their 1x and 1.5x crops once,
# before training, into region_cache_dir: the top 16 proposals of each image (32 took 40 s
# longer to embed and gave no better novel AP50 in our runs).
_base_ = './vild_text.py'
work_dir = 'work_dirs/quickstart/vild'
region_cache_dir = 'work_dirs/quickstart/region_cache'
model = dict(
    roi_head=dict(region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/quickstart/vild_text'),
         teacher={{_base_.teacher}},
         num_proposals=16,
         scales=(1.0, 1.5)),
]
