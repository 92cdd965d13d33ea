# The three losses of deeplabv3plus_r18_combined_shapes.py (ground truth on the seen
# classes, the teacher's confident unseen-class pseudo labels on the unlabelled pixels, L1
# distillation of its dense embeddings) for the student on the teacher's CLIP ResNet trunk.
#   python tools/train.py configs/seg/upernet_clip_trunk_combined_shapes.py
_base_ = ['./upernet_clip_trunk_gt_shapes.py']

model = dict(
    teacher={{_base_.teacher}},
    dense={{_base_.dense_view}},
    dense_cache={{_base_.dense_cache}},
    pseudo_label_loss=dict(type='PseudoLabelLoss', score_thr=0.5, unlabelled_only=True),
    pseudo_label_classes={{_base_.unseen_classes}},
    feature_loss=dict(type='DenseFeatureDistillLoss', mode='l1', loss_weight=1.0))
custom_hooks = [dict(type='BuildDenseTeacherCacheHook')]
