# vlkd-shapes zero-shot training data: the train masks keep the numbering of all 13 labels
# but the unseen classes' pixels are ignored.
_base_ = ['./shapes_segmentation.py']
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ShapesZeroShotSegDataset',
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
        ignore_classes={{_base_.unseen_classes}},  # zero-shot: no unseen labels in training
        pipeline={{_base_.train_pipeline}}))
