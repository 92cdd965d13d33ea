# All three losses (MaskCLIP+'s transductive zero-shot setting plus feature distillation):
# ground truth on the seen classes; on the pixels without a label (the unseen objects) the
# teacher's pseudo labels among the unseen classes where it is confident; L1 distillation
# of the teacher's dense embeddings everywhere.
#   python tools/train.py configs/seg/deeplabv3plus_r18_combined_shapes.py
_base_ = ['./deeplabv3plus_r18_gt_shapes.py']

model = dict(
    teacher={{_base_.teacher}},
    dense={{_base_.dense_view}},
    dense_cache={{_base_.dense_cache}},
    pseudo_label_loss=dict(type='PseudoLabelLoss', score_thr=0.5, unlabelled_only=True),
    pseudo_label_classes={{_base_.unseen_classes}},
    feature_loss=dict(type='DenseFeatureDistillLoss', mode='l1', loss_weight=1.0))
custom_hooks = [dict(type='BuildDenseTeacherCacheHook')]
