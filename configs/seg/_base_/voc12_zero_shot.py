# Pascal VOC 2012, zero-shot split of ZS3Net / SPNet: 15 seen classes + background, 5
# unseen (potted plant, sheep, sofa, train, tv monitor) whose pixels are ignored in training.
# Metric: seen / unseen mIoU and hIoU over the 21 classes of val (1449 images).
# Layout (official VOCdevkit; SBD's SegmentationClassAug for the 10582-image "aug" train set
# holds the same values and works the same way, with ann_file listing its ids):
#   data/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation}
data_root = 'data/VOCdevkit/VOC2012/'
classes = ['background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
           'cat', 'chair', 'cow', 'dining table', 'dog', 'horse', 'motorbike', 'person',
           'potted plant', 'sheep', 'sofa', 'train', 'tv monitor']
unseen_classes = ['potted plant', 'sheep', 'sofa', 'train', 'tv monitor']
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
        type='PascalVOCZeroShotDataset',
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='OpenVocabIoUMetric', unseen_classes=unseen_classes)
test_evaluator = val_evaluator
