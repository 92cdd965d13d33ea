# Base-only detector for the vlkd-shapes table: a plain mmdet Faster R-CNN (same backbone,
# neck, RPN, sampling and schedule as the ViLD students) with a learned linear classifier,
# trained on base-class boxes only. It has one output per class of the test set so that its
# labels follow the test set's class order; the novel classes never have a training box, so
# it cannot detect them (novel AP50 ~ 0). Also the "plain step" of tools/benchmark_det.py.
#   python tools/train.py configs/vild/base_only_faster_rcnn_r18_fpn_shapes.py
_base_ = [
    '../_base_/models/vild_faster_rcnn_r18_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/schedules/shapes_detection_short.py',
    '../_base_/det_runtime.py',
    '../_base_/models/base_only_roi_head.py',
]

model = dict(roi_head={{_base_.base_only_roi_head}})
# base-class boxes only (novel objects stay in the images, unlabelled), labels in the order
# of all classes
train_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.all_classes}})))
