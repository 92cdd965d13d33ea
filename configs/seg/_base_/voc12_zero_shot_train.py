# The training set of voc12_zero_shot.py: its unseen classes' pixels ignored.
_base_ = ['./voc12_zero_shot.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='PascalVOCZeroShotDataset',
        data_root={{_base_.data_root}},
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ignore_classes={{_base_.unseen_classes}},
        pipeline={{_base_.train_pipeline}}))
