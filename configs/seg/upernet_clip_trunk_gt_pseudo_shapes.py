# upernet_clip_trunk_combined_shapes.py without the dense feature distillation: ground
# truth on the seen classes and the teacher's confident unseen-class pseudo labels on the
# unlabelled pixels only (MaskCLIP+'s transductive zero-shot setting).
#   python tools/train.py configs/seg/upernet_clip_trunk_gt_pseudo_shapes.py
_base_ = ['./upernet_clip_trunk_combined_shapes.py']

model = dict(feature_loss=None)
