# Region-based knowledge distillation (Rasheed et al., NeurIPS 2022) in the vlkd-shapes
# benchmark setting (configs/vild/README.md): the quickstart's ViLD student (backbone = the
# quickstart teacher's CLIP ResNet trunk, 600 iterations, base-class boxes only) with
# - the L1 distillation of ViLD on the top 16 cached proposals of each image,
# - the inter-embedding relationship (IRM) loss over all distilled regions of the batch,
# - pseudo-label image-level supervision: for every class an image's captions name, the
#   cached proposal the teacher scores highest for that class is classified as it,
# - weight transfer: the classification projection computed from the distillation one.
#   python tools/quickstart.py   # the teacher and ViLD-text (the proposal detector)
#   python tools/train.py configs/rkd/rkd_clip_trunk_shapes.py
#   python tools/test.py configs/rkd/rkd_clip_trunk_shapes.py work_dirs/rkd/rkd_clip_trunk_shapes \
#       --work-dir work_dirs/rkd/rkd_clip_trunk_shapes/test
# The ViLD-image config of this setting is the base for its region cache (the directory and
# the BuildRegionCacheHook): work_dirs/vild/clip_trunk_region_cache, 32 proposals per image of
# the quickstart ViLD-text, 1x + 1.5x crops embedded by the quickstart teacher, read only
# here. It is ordered by proposal score, so its first 16 per image are the 16 proposals the
# quickstart ViLD distils. Everything else is configs/quickstart/vild.py's.
_base_ = '../vild/vild_image_clip_trunk_shapes.py'
work_dir = 'work_dirs/rkd/rkd_clip_trunk_shapes'

model = dict(
    roi_head=dict(
        type='vlkd.RKDRoIHead',
        bbox_head=dict(type='vlkd.RKDBBoxHead',
                       image_label_classes={{_base_.all_classes}}),
        region_distillation=dict(loss_weight=1.0, max_regions_per_image=16),
        relation_loss_weight=10.0,
        image_labels=dict(caption_file='data/shapes/annotations/captions_train.json',
                          loss_weight=1.0)))
