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
# base-class boxes only. One output per class of the test set, so that its labels follow
# the test set's class order; the novel classes never have a training box (novel AP50 ~ 0).
#   python tools/train.py configs/quickstart/teacher.py
#   python tools/train.py configs/vild/base_only_faster_rcnn_clip_trunk_shapes.py
#   python tools/test.py configs/vild/base_only_faster_rcnn_clip_trunk_shapes.py \
#       work_dirs/vild/base_only_faster_rcnn_clip_trunk_shapes
_base_ = ['../quickstart/vild_text.py', '../_base_/models/base_only_roi_head.py']
work_dir = 'work_dirs/vild/base_only_faster_rcnn_clip_trunk_shapes'

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
