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
]

model = dict(
    roi_head=dict(
        type='StandardRoIHead',
        bbox_head=dict(
            _delete_=True,
            type='Shared2FCBBoxHead',
            in_channels=64,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=12,  # all classes of vlkd-shapes, in the dataset's order
            reg_class_agnostic=False,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))))
# base-class boxes only (novel objects stay in the images, unlabelled), labels in the order
# of all classes
train_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.all_classes}})))
