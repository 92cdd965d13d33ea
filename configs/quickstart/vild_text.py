# Quickstart stage 2: ViLD-text student with the quickstart teacher.
_base_ = '../vild/vild_text_r18_fpn_shapes.py'
work_dir = 'work_dirs/quickstart/vild_text'
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/quickstart/teacher')
model = dict(roi_head=dict(bbox_head=dict(vocabulary=dict(teacher=teacher))))
