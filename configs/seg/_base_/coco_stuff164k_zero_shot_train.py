# The training set of coco_stuff164k_zero_shot.py: its unseen classes' pixels ignored.
_base_ = ['./coco_stuff164k_zero_shot.py']
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='COCOStuffZeroShotDataset',
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        ignore_classes={{_base_.coco_stuff_unseen_classes}},
        pipeline={{_base_.train_pipeline}}))
