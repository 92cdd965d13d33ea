# OV-LVIS: LVIS v1 whose 866 frequent + common categories are the base classes and whose 337
# rare categories are novel (the protocol of ViLD). Training sees no rare-class annotation;
# evaluation covers all 1203 categories on lvis_v1_val.json, and the headline number is mask
# AP on the rare categories (ov_lvis/segm_APr).
# Layout and preparation: configs/ov_lvis/README.md. In short:
#   data/lvis/annotations/lvis_v1_{train,val}.json, data/lvis/train2017/, data/lvis/val2017/
#   (the COCO 2017 images; LVIS val also uses COCO train images)
#   python tools/make_ov_split.py lvis data/lvis/annotations
# The classes come from vlkd.datasets.ov_splits (class_group='base' in training: the 866
# frequent and common names; all 1203 in testing), in category-id order.
data_root = 'data/lvis/'

# mmdet's LVIS v1 recipe: multi-scale training, repeat factor sampling (threshold 1e-3)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    # homography_matrix: ViLD maps its cached proposal boxes through the resize and flip
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'homography_matrix')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            type='vlkd.OVLVISV1Dataset',
            data_root=data_root,
            # lvis_v1_train.json without the annotations of rare categories
            ann_file='annotations/lvis_v1_train_ov_base.json',
            data_prefix=dict(img=''),
            class_group='base',
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmdet',
        type='vlkd.OVLVISV1Dataset',
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='vlkd.OpenVocabLVISMetric',
                     ann_file=data_root + 'annotations/lvis_v1_val.json',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator
