# Pseudo-label distillation alone (MaskCLIP+ without labels): the student learns the
# teacher's zero-shot segmentation of the train images (13 class names; background described
# by the background words of the shapes captions) where the teacher's softmax confidence is
# at least 0.5. No ground truth is used. The teacher's dense maps of the train images are
# computed once into work_dirs/seg_cache/ before the first such training.
#   python tools/train.py configs/seg/deeplabv3plus_r18_pseudo_shapes.py
_base_ = ['./deeplabv3plus_r18_gt_shapes.py']

model = dict(
    decode_head=dict(loss_decode=None, synonyms={{_base_.background_synonyms}}),
    teacher={{_base_.teacher}},
    dense={{_base_.dense_view}},
    dense_cache={{_base_.dense_cache}},
    pseudo_label_loss=dict(type='PseudoLabelLoss', score_thr=0.5))
custom_hooks = [dict(type='BuildDenseTeacherCacheHook')]
