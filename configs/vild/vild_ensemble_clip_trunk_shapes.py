# ViLD-ensemble in the quickstart setting (vlkd-shapes table): the quickstart's ViLD student
# (configs/quickstart/vild.py: CLIP ResNet trunk of the quickstart teacher as backbone, 600
# iterations) with two heads on the same RoI features, a ViLD-text head and a separately
# distilled ViLD-image branch, combined at test time by ViLD's weighted geometric mean
# (2/3 on the text head for base classes, 2/3 on the image branch for novel ones).
#   python tools/quickstart.py    # teacher and ViLD-text (the proposal detector)
#   python tools/train.py configs/vild/vild_ensemble_clip_trunk_shapes.py
#   python tools/test.py configs/vild/vild_ensemble_clip_trunk_shapes.py \
#       work_dirs/vild/vild_ensemble_clip_trunk_shapes
# Same region cache (and key) as vild_image_clip_trunk_shapes.py: the first of the two runs
# builds it if it is missing.
_base_ = '../quickstart/vild.py'
work_dir = 'work_dirs/vild/vild_ensemble_clip_trunk_shapes'
region_cache_dir = 'work_dirs/vild/clip_trunk_region_cache'

model = dict(
    roi_head=dict(
        type='vlkd.ViLDEnsembleRoIHead',
        ensemble=dict(image_scores='branch', base_weight=2 / 3),
        bbox_head=dict(type='vlkd.ViLDEnsembleBBoxHead'),
        region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/quickstart/vild_text'),
         teacher={{_base_.teacher}},
         # 32 proposals per image: the quickstart's region cache as built at commit f8285e2
         # (configs/quickstart/vild.py distils 16 since 0bfaa68)
         num_proposals=32,
         scales=(1.0, 1.5)),
]
