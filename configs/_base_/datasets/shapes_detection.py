# vlkd-shapes in the OV-COCO protocol: train on base-class boxes, evaluate on all classes.
# Make the data with `python tools/make_shapes.py --out data/shapes` (the quickstart does it).
data_root = 'data/shapes/'
# The fixed split of vlkd.datasets.shapes (a test checks these lists against it).
all_classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond',
               'cross', 'heart', 'crescent', 'ellipse', 'arrow']
novel_classes = ['star', 'heart', 'crescent']
base_classes = [c for c in all_classes if c not in novel_classes]
image_scale = (128, 128)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'homography_matrix')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.ShapesDataset',
        data_root=data_root,
        # novel-class boxes removed; novel objects are still in the images
        ann_file='annotations/instances_train_base.json',
        data_prefix=dict(img='images/train/'),
        metainfo=dict(classes=base_classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.ShapesDataset',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.ShapesDataset',
        data_root=data_root,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='images/test/'),
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = dict(type='OpenVocabCocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                     base_classes=base_classes, novel_classes=novel_classes)
test_evaluator = dict(type='OpenVocabCocoMetric', ann_file=data_root + 'annotations/instances_test.json',
                      base_classes=base_classes, novel_classes=novel_classes)
