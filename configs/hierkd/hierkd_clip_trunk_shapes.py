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
#
# the ViLD-image config for its 32-proposal region cache (work_dirs/vild/clip_trunk_region_cache),
# with ViLD's box head (text classifier + distilled embedding) back in place
_base_ = '../vild/vild_image_clip_trunk_shapes.py'
work_dir = 'work_dirs/hierkd/hierkd_clip_trunk_shapes'
custom_imports = dict(imports=['vlkd.det'], allow_failed_imports=False)  # AttachCaption

model = dict(
    roi_head=dict(
        type='vlkd.HierKDRoIHead',
        bbox_head=dict(type='vlkd.ViLDBBoxHead'),
        region_distillation=dict(loss_weight=1.0, max_regions_per_image=16),
        # global level; the captions are embedded by the box head's vocabulary teacher
        global_distillation=dict(num_heads=4, init_temperature=0.07, loss_weight=1.0)))

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
