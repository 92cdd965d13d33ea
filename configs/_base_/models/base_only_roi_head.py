# The RoI head of the base-only detectors (configs/vild/base_only_*): mmdet's Faster R-CNN
# head with a learned linear classifier, one output per class of vlkd-shapes in the
# dataset's order (the novel classes never get a training box). Used as
# model = dict(roi_head={{_base_.base_only_roi_head}}).
base_only_roi_head = dict(
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
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)))
