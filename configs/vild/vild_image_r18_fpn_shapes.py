# ViLD-image on vlkd-shapes: the region embeddings are trained only by L1 distillation of
# the teacher's embeddings of cached proposals (no classification loss on base boxes; box
# regression is still trained on them). At test time a region is classified by the softmax
# of the cosine similarities of its embedding to the class text embeddings (no background).
# Reuses the region cache of ViLD (same teacher, proposals and settings).
#   python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py   # the proposal detector
#   python tools/train.py configs/vild/vild_image_r18_fpn_shapes.py
_base_ = './vild_r18_fpn_shapes.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(type='vlkd.ViLDImageBBoxHead'),
        region_distillation=dict(loss_weight=1.0)))
