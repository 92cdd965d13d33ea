# ViLD (text + image) on vlkd-shapes: ViLD-text plus L1 distillation of the teacher's crop
# embeddings of proposals into the student's region embeddings.
# Proposals come from the ViLD-text detector (trained on base boxes only); they are embedded
# once by the teacher (1x and 1.5x crops) and cached before training starts.
#   python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py
#   python tools/train.py configs/vild/vild_r18_fpn_shapes.py
_base_ = './vild_text_r18_fpn_shapes.py'

# the ViLD-text run (a checkpoint file or its work_dir); its stored config rebuilds the model
proposal_detector = dict(checkpoint='work_dirs/vild_text_r18_fpn_shapes')
region_cache_dir = 'work_dirs/region_cache/shapes_train_vild_text'

model = dict(
    roi_head=dict(
        region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0)))

custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=proposal_detector,
         teacher={{_base_.teacher}},
         num_proposals=32,
         scales=(1.0, 1.5)),
]
