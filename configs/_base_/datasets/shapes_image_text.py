# vlkd-shapes as image-text pairs for the pretraining recipes of configs/pretrain/.
# Make the data with `python tools/make_shapes.py --out data/shapes`.
#
# Training: ShapesCaptionDataset at 32 px; 90% of the fetches are close-ups of one object
# captioned by its class name in a template ("a picture of a star"), the others whole scenes
# with one of their captions. Validation: zero-shot classification of every val object crop
# among all 12 classes, reported over all, base and novel crops. `retrieval_dataloader`
# (recipes use it as their test_dataloader, with `retrieval_evaluator`): the 200 val scenes,
# each with all its captions (image <-> text retrieval R@K) and a caption of another scene
# (ITM accuracy).
data_root = 'data/shapes/'
classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
           'heart', 'crescent', 'ellipse', 'arrow']
novel_classes = ['star', 'heart', 'crescent']
image_size = 32  # input side of the image towers (px)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # object crops: the box enlarged 1-1.5x about a centre moved by up to 10% of its size
    dict(type='CropRegion', scale_range=(1.0, 1.5), max_shift=0.1),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='RandomFlipImageText', prob=0.5),
    dict(type='PackImageTextInputs', meta_keys=('img_id', 'text')),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropRegion'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackImageTextInputs', meta_keys=('img_id', 'text', 'crop_bbox')),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ShapesCaptionDataset',
        data_root=data_root,
        ann_file='annotations/captions_train.json',
        instances_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        crop_prob=0.9,
        # class names only in close-up captions: colour words would let a model match
        # crops by colour instead of shape
        color_prob=0.0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesObjectCropDataset',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesObjectCropDataset',
        data_root=data_root,
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='images/test/'),
        test_mode=True,
        pipeline=val_pipeline))
val_evaluator = dict(type='ZeroShotCropAccuracy', novel_classes=novel_classes)
test_evaluator = val_evaluator

retrieval_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackImageTextInputs'),
]
retrieval_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageTextDataset',
        data_root=data_root,
        ann_file='annotations/captions_val.json',
        data_prefix=dict(img='images/val/'),
        items='images',
        itm_negatives=True,
        test_mode=True,
        pipeline=retrieval_pipeline))
retrieval_evaluator = [dict(type='ImageTextRetrievalMetric', ks=(1, 5, 10))]
itm_evaluator = [dict(type='ImageTextMatchingAccuracy')]
