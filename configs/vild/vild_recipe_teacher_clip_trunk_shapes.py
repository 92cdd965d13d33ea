# ViLD taught by the ALBEF recipe: the ViLD-text student above plus L1 distillation of ALBEF's
# embeddings of proposal crops (1x and 1.5x, top 16 proposals of the ViLD-text detector).
#   python tools/train.py configs/vild/vild_albef_teacher_clip_trunk_shapes.py
_base_ = './vild_text_albef_teacher_clip_trunk_shapes.py'
work_dir = 'work_dirs/vild_albef_teacher_clip_trunk_shapes'
region_cache_dir = 'work_dirs/region_cache/shapes_train_albef_teacher'
model = dict(
    roi_head=dict(region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/vild_text_albef_teacher_clip_trunk_shapes'),
         teacher={{_base_.teacher}},
         num_proposals=16,
         scales=(1.0, 1.5)),
]
