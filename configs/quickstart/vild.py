# Quickstart stage 3: ViLD (text + image distillation). Proposals come from the stage-2
# detector; the teacher embeds their crops once, before training.
_base_ = '../vild/vild_r18_fpn_shapes.py'
work_dir = 'work_dirs/quickstart/vild'
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/quickstart/teacher')
region_cache_dir = 'work_dirs/quickstart/region_cache'
model = dict(
    roi_head=dict(
        bbox_head=dict(vocabulary=dict(teacher=teacher)),
        region_distillation=dict(cache_dir=region_cache_dir)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/quickstart/vild_text'),
         teacher=teacher,
         num_proposals=32,
         scales=(1.0, 1.5)),
]
