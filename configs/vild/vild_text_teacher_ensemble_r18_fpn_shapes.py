# ViLD-text + teacher ensemble on vlkd-shapes (the paper's "ViLD-text + CLIP"): the ViLD-text
# detector's class probabilities combined with the teacher's zero-shot probabilities of a
# 1x + 1.5x crop of each detection, by ViLD's weighted geometric mean (2/3 on the text head
# for base classes, 2/3 on the teacher for novel ones). Test-time only: it uses the weights of
# the ViLD-text run and runs the teacher on every box of every test image (slow).
#   python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py
#   python tools/test.py configs/vild/vild_text_teacher_ensemble_r18_fpn_shapes.py \
#       work_dirs/vild_text_r18_fpn_shapes/iter_1500.pth
_base_ = './vild_text_r18_fpn_shapes.py'

model = dict(
    type='vlkd.ViLDFasterRCNN',
    roi_head=dict(
        type='vlkd.ViLDEnsembleRoIHead',
        ensemble=dict(image_scores='teacher', base_weight=2 / 3, scales=(1.0, 1.5))))
