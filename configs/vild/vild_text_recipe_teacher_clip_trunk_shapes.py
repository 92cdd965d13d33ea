# ViLD-text taught by a pretraining recipe of configs/pretrain/ (any recipe with a joint
# space on pixels: clip, unicl, albef, flava, vlmo, fdt), named by the TEACHER environment
# variable (the recipe's work_dir name; default albef_shapes_tiny). The recipe gives the class
# vocabulary; the student's backbone starts from the quickstart teacher's CLIP ResNet trunk
# for every recipe (a torchvision ResNet-18 or a ViT tower is no detector trunk here), so the
# rows compare teachers at an equal student start.
#   python tools/train.py configs/pretrain/albef_shapes_tiny.py
#   python tools/quickstart.py          # (or its teacher stage) for the CLIP trunk
#   TEACHER=albef_shapes_tiny python tools/train.py configs/vild/vild_text_recipe_teacher_clip_trunk_shapes.py
#   TEACHER=albef_shapes_tiny python tools/test.py configs/vild/vild_text_recipe_teacher_clip_trunk_shapes.py \
#       work_dirs/vild_text_teacher_albef_shapes_tiny
_base_ = '../quickstart/vild_text.py'
work_dir = 'work_dirs/vild_text_teacher_{{$TEACHER:albef_shapes_tiny}}'
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/{{$TEACHER:albef_shapes_tiny}}')
model = dict(roi_head=dict(bbox_head=dict(vocabulary=dict(teacher=teacher))))
