# OV-COCO: COCO 2017 with the 48 base / 17 novel classes of Bansal et al. (the split of OVR-CNN
# and ViLD). Training sees base-class boxes only; evaluation covers the 65 classes, and the
# headline number is box AP50 on the novel classes (ov_coco/bbox_AP50_novel).
# Layout and preparation: configs/ov_coco/README.md. In short:
#   data/coco/train2017/, data/coco/val2017/, data/coco/annotations/instances_{train,val}2017.json
#   python tools/make_ov_split.py coco data/coco/annotations
# The classes come from vlkd.datasets.ov_splits (class_group='base' in training, all 65 in
# testing), in COCO category-id order, which is the label order.
data_root = 'data/coco/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # homography_matrix: ViLD maps its cached proposal boxes through the resize and flip
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'homography_matrix')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='mmdet.AspectRatioBatchSampler'),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.OVCocoDataset',
        data_root=data_root,
        # base-class boxes only; images without one are not in the file
        ann_file='annotations/instances_train2017_ov_base.json',
        data_prefix=dict(img='train2017/'),
        class_group='base',
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.OVCocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_val2017_ov.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# base / novel class groups: from the dataset's metainfo
val_evaluator = dict(type='vlkd.OpenVocabCocoMetric',
                     ann_file=data_root + 'annotations/instances_val2017_ov.json', metric='bbox')
test_evaluator = val_evaluator
