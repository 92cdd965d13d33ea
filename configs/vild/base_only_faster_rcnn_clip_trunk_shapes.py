# Base-only detector in the quickstart setting (vlkd-shapes table): a plain mmdet Faster
# R-CNN with a learned linear classifier on the quickstart's backbone (the CLIP ResNet trunk
# of the quickstart teacher), neck, RPN, sampling and 600-iteration schedule, trained on
# base-class boxes only. One output per class of the test set, so that its labels follow
# the test set's class order; the novel classes never have a training box (novel AP50 ~ 0).
#   python tools/train.py configs/quickstart/teacher.py
#   python tools/train.py configs/vild/base_only_faster_rcnn_clip_trunk_shapes.py
#   python tools/test.py configs/vild/base_only_faster_rcnn_clip_trunk_shapes.py \
#       work_dirs/vild/base_only_faster_rcnn_clip_trunk_shapes
_base_ = ['../quickstart/vild_text.py', '../_base_/models/base_only_roi_head.py']
work_dir = 'work_dirs/vild/base_only_faster_rcnn_clip_trunk_shapes'

model = dict(roi_head={{_base_.base_only_roi_head}})
# base-class boxes only (novel objects stay in the images, unlabelled), labels in the order
# of all classes
train_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.all_classes}})))
