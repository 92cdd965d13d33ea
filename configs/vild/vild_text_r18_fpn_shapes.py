# ViLD-text on vlkd-shapes: a Faster R-CNN trained on base-class boxes whose classifier is
# the teacher's text embeddings of the class names; tested on base + novel names.
#   python tools/train.py configs/vild/vild_text_r18_fpn_shapes.py
_base_ = [
    '../_base_/models/vild_faster_rcnn_r18_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/shapes_detection_short.py',
    '../_base_/det_runtime.py',
]

# The teacher: a vlkd checkpoint (a file, or a work_dir holding `last_checkpoint`).
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/clip_shapes_tiny')

model = dict(
    roi_head=dict(
        bbox_head=dict(
            train_classes={{_base_.base_classes}},
            test_classes={{_base_.all_classes}},
            vocabulary=dict(teacher=teacher, templates='shapes'))))
