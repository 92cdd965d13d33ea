# ViLD taught by a pretraining recipe (TEACHER, as in vild_text_recipe_teacher_clip_trunk_shapes.py):
# that ViLD-text student plus L1 distillation of the recipe's embeddings of proposal crops
# (1x and 1.5x, top 16 proposals of the recipe's own ViLD-text detector, which must be
# trained first).
#   TEACHER=albef_shapes_tiny python tools/train.py configs/vild/vild_recipe_teacher_clip_trunk_shapes.py
#   TEACHER=albef_shapes_tiny python tools/test.py configs/vild/vild_recipe_teacher_clip_trunk_shapes.py \
#       work_dirs/vild_teacher_albef_shapes_tiny
_base_ = './vild_text_recipe_teacher_clip_trunk_shapes.py'
work_dir = 'work_dirs/vild_teacher_{{$TEACHER:albef_shapes_tiny}}'
region_cache_dir = 'work_dirs/region_cache/shapes_train_teacher_{{$TEACHER:albef_shapes_tiny}}'
model = dict(
    roi_head=dict(region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/vild_text_teacher_{{$TEACHER:albef_shapes_tiny}}'),
         teacher={{_base_.teacher}},
         num_proposals=16,
         scales=(1.0, 1.5)),
]
