# Dense feature distillation alone: the student's pixel embeddings regress the teacher's
# dense embeddings (per-pixel L1 of normalised embeddings, the teacher map upsampled to the
# student's); classes come from the text embeddings only. No ground truth is used, so no
# loss could train a learned background embedding: background is described by text, its
# synonyms' embeddings averaged, as the teacher does.
#   python tools/train.py configs/seg/deeplabv3plus_r18_feat_shapes.py
_base_ = ['./deeplabv3plus_r18_gt_shapes.py']

model = dict(
    decode_head=dict(loss_decode=None, background='text',
                     synonyms={{_base_.background_synonyms}}),
    teacher={{_base_.teacher}},
    dense={{_base_.dense_view}},
    dense_cache={{_base_.dense_cache}},
    feature_loss=dict(type='DenseFeatureDistillLoss', mode='l1', loss_weight=1.0))
custom_hooks = [dict(type='BuildDenseTeacherCacheHook')]
