# ViLD-text + teacher ensemble in the quickstart setting (vlkd-shapes table): the weights of
# the quickstart's ViLD-text run (configs/quickstart/vild_text.py), each detection's class
# probabilities combined with the quickstart teacher's zero-shot probabilities of its
# 1x + 1.5x crop by ViLD's weighted geometric mean (2/3 on the text head for base classes,
# 2/3 on the teacher for novel ones). Test-time only; the teacher runs on every box.
#   python tools/quickstart.py    # teacher and ViLD-text
#   python tools/test.py configs/vild/vild_text_teacher_ensemble_clip_trunk_shapes.py \
#       work_dirs/quickstart/vild_text
_base_ = '../quickstart/vild_text.py'
work_dir = 'work_dirs/vild/vild_text_teacher_ensemble_clip_trunk_shapes'

model = dict(
    type='vlkd.ViLDFasterRCNN',
    roi_head=dict(
        type='vlkd.ViLDEnsembleRoIHead',
        ensemble=dict(image_scores='teacher', base_weight=2 / 3, scales=(1.0, 1.5))))
