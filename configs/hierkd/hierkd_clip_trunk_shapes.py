# HierKD (Ma et al., CVPR 2022) in the quickstart setting of the vlkd-shapes table: the
# quickstart's ViLD student (configs/quickstart/vild.py: CLIP ResNet trunk of the quickstart
# teacher as backbone, ViLD-text classifier on base boxes, instance-level L1 distillation of
# the teacher's cached proposal embeddings, 600 iterations) plus HierKD's global level: one
# caption-guided embedding per image from all FPN levels, contrasted with the teacher's
# embeddings of the images' captions (InfoNCE over the batch).
#   python tools/quickstart.py    # teacher, ViLD-text (the proposal detector)
#   python tools/train.py configs/vild/vild_image_clip_trunk_shapes.py  # builds the region cache
#   python tools/train.py configs/hierkd/hierkd_clip_trunk_shapes.py
#   python tools/test.py configs/hierkd/hierkd_clip_trunk_shapes.py \
#       work_dirs/hierkd/hierkd_clip_trunk_shapes \
#       --work-dir work_dirs/hierkd/hierkd_clip_trunk_shapes/test
# Two-stage, not the paper's one-stage ATSS: see configs/hierkd/README.md.
_base_ = '../quickstart/vild.py'
work_dir = 'work_dirs/hierkd/hierkd_clip_trunk_shapes'
custom_imports = dict(imports=['vlkd.det'], allow_failed_imports=False)  # AttachCaption

# Instance level: the region cache of the ViLD-image / ViLD-ensemble rows of the table,
# read as it is (work_dirs/quickstart/region_cache is a version-2 cache of padded crops,
# which the hook refuses). It holds the top 32 proposals per image of the quickstart
# ViLD-text, embedded by the quickstart teacher (1x + 1.5x clipped crops); the student
# distils the top 16 of them, as the quickstart ViLD does.
region_cache_dir = 'work_dirs/vild/clip_trunk_region_cache'
model = dict(
    roi_head=dict(
        type='vlkd.HierKDRoIHead',
        region_distillation=dict(cache_dir=region_cache_dir, loss_weight=1.0,
                                 max_regions_per_image=16),
        # global level; the captions are embedded by the box head's vocabulary teacher
        global_distillation=dict(num_heads=4, init_temperature=0.07, loss_weight=1.0)))
custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=dict(checkpoint='work_dirs/quickstart/vild_text'),
         teacher={{_base_.teacher}},
         num_proposals=32,
         scales=(1.0, 1.5)),
]

# one caption of each training image, drawn per fetch, left/right swapped on a flip
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='vlkd.AttachCaption',
         ann_file='data/shapes/annotations/captions_train.json'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'homography_matrix', 'caption')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
