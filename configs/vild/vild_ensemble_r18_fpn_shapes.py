# ViLD-ensemble on vlkd-shapes: two heads on the same RoI features, a ViLD-text head
# (classification loss on base boxes) and a ViLD-image branch (L1 distillation of the
# teacher's proposal embeddings). At test time their class probabilities are combined by
# ViLD's weighted geometric mean, text^(2/3) * image^(1/3) on base classes and
# text^(1/3) * image^(2/3) on novel ones (vlkd/det/vild_ensemble.py). No teacher at test time.
#   python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py   # the proposal detector
#   python tools/train.py configs/vild/vild_ensemble_r18_fpn_shapes.py
_base_ = './vild_r18_fpn_shapes.py'

model = dict(
    roi_head=dict(
        type='vlkd.ViLDEnsembleRoIHead',
        ensemble=dict(image_scores='branch', base_weight=2 / 3),
        bbox_head=dict(type='vlkd.ViLDEnsembleBBoxHead')))
