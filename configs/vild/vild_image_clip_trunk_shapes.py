# ViLD-image in the quickstart setting (vlkd-shapes table): the quickstart's ViLD student
# (configs/quickstart/vild.py: CLIP ResNet trunk of the quickstart teacher as backbone, 600
# iterations) with ViLD-image's head: region embeddings trained only by L1 distillation of
# the teacher's cached proposal embeddings, classified at test time by cosine to the class
# text embeddings (no background, no classification loss on base boxes).
#   python tools/quickstart.py    # teacher and ViLD-text (the proposal detector)
#   python tools/train.py configs/vild/vild_image_clip_trunk_shapes.py
#   python tools/test.py configs/vild/vild_image_clip_trunk_shapes.py \
#       work_dirs/vild/vild_image_clip_trunk_shapes
# The hook builds the region cache (32 proposals of the quickstart's ViLD-text per image,
# embedded by the quickstart teacher) before training if work_dirs/vild/clip_trunk_region_cache
# lacks it; a copy of a quickstart cache with the same key (one built by the quickstart of
# commit f8285e2, 32 proposals) is accepted as it is.
_base_ = '../quickstart/vild.py'
work_dir = 'work_dirs/vild/vild_image_clip_trunk_shapes'
region_cache_dir = 'work_dirs/vild/clip_trunk_region_cache'

model = dict(
    roi_head=dict(
        bbox_head=dict(type='vlkd.ViLDImageBBoxHead'),
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
