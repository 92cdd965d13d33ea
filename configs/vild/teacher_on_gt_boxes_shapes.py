# Reference row of the vlkd-shapes table: the quickstart teacher's zero-shot classification of
# the ground-truth boxes of the test split (1x + 1.5x crops, softmax over the 12 classes at
# temperature 0.01, every box x class a detection). Perfect boxes: the AP is the teacher's
# region classification alone, what a distilled student could reach with perfect localisation.
#   python tools/quickstart.py      # (its teacher stage) for work_dirs/quickstart/teacher
#   python tools/test.py configs/vild/teacher_on_gt_boxes_shapes.py
# Another teacher: --cfg-options model.teacher.checkpoint=work_dirs/albef_shapes_tiny
_base_ = ['../_base_/datasets/shapes_detection.py', '../_base_/det_runtime.py']
work_dir = 'work_dirs/vild/teacher_on_gt_boxes_shapes'

model = dict(
    type='vlkd.TeacherBoxClassifier',
    teacher=dict(type='VLKDTeacher', checkpoint='work_dirs/quickstart/teacher'),
    classes={{_base_.all_classes}},
    templates='shapes',
    scales=(1.0, 1.5),
    temperature=0.01,
    max_per_img=100,
    # the teacher crops RGB pixels in 0..255
    data_preprocessor=dict(type='mmdet.DetDataPreprocessor', bgr_to_rgb=True))

test_cfg = dict(type='TestLoop')
train_dataloader = train_cfg = optim_wrapper = param_scheduler = None
val_dataloader = val_cfg = val_evaluator = None
