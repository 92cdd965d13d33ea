# COCO-Stuff 164k, zero-shot split of ZS3Net / SPNet: 156 seen, 15 unseen classes (frisbee,
# skateboard, cardboard, carrot, scissors, suitcase, giraffe, cow, road, wall-concrete,
# tree, grass, river, clouds, playingfield) whose pixels are ignored in training; no
# background class. Metric: seen / unseen mIoU and hIoU over the 171 classes of val2017.
# Layout: the official COCO 2017 images and stuffthingmaps_trainval2017 (values = COCO
# category id - 1, 255 unlabelled):
#   data/coco_stuff164k/images/{train2017,val2017}/*.jpg
#   data/coco_stuff164k/annotations/{train2017,val2017}/*.png
# (maps converted by mmseg's coco_stuff164k.py: train_ids=True,
# seg_map_suffix='_labelTrainIds.png' in both datasets)
_base_ = ['./coco_stuff_classes.py']
data_root = 'data/coco_stuff164k/'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='mmseg.RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='mmseg.RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PhotoMetricDistortion'),
    dict(type='mmseg.PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadSegAnnotations'),
    dict(type='mmseg.PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='COCOStuffZeroShotDataset',
        data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='OpenVocabIoUMetric',
                     unseen_classes={{_base_.coco_stuff_unseen_classes}})
test_evaluator = val_evaluator
