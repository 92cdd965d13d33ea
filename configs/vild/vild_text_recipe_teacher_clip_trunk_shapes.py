# ViLD-text taught by a non-CLIP teacher: the ALBEF recipe (configs/pretrain/albef_shapes_tiny.py,
# ResNet-18 grid tower + BERT + fusion) gives the class vocabulary; the student's backbone still
# starts from the quickstart teacher's CLIP ResNet trunk (ALBEF's torchvision ResNet-18 is not
# a detector trunk here), so the row compares teachers at an equal student start.
#   python tools/train.py configs/pretrain/albef_shapes_tiny.py
#   python tools/quickstart.py          # (or its teacher stage) for the CLIP trunk
#   python tools/train.py configs/vild/vild_text_albef_teacher_clip_trunk_shapes.py
_base_ = '../quickstart/vild_text.py'
work_dir = 'work_dirs/vild_text_albef_teacher_clip_trunk_shapes'
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/albef_shapes_tiny')
model = dict(roi_head=dict(bbox_head=dict(vocabulary=dict(teacher=teacher))))
