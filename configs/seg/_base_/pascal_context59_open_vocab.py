# Pascal-Context-59 validation (5105 images) for open-vocabulary evaluation: mIoU over the
# 59 classes (background ignored). Layout: VOC 2010 images and the context masks converted
# by mmseg's pascal_context.py (shipped with mmseg, .mim/tools/dataset_converters):
#   data/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext}
#   data/VOCdevkit/VOC2010/ImageSets/SegmentationContext/val.txt
# the 59 classes in label order (vlkd.datasets.seg_pascal_context; a test checks)
classes = [
    'aeroplane', 'bag', 'bed', 'bed clothes', 'bench', 'bicycle', 'bird', 'boat', 'book',
    'bottle', 'building', 'bus', 'cabinet', 'car', 'cat', 'ceiling', 'chair', 'cloth',
    'computer', 'cow', 'cup', 'curtain', 'dog', 'door', 'fence', 'floor', 'flower', 'food',
    'grass', 'ground', 'horse', 'keyboard', 'light', 'motorbike', 'mountain', 'mouse', 'person',
    'plate', 'platform', 'potted plant', 'road', 'rock', 'sheep', 'shelves', 'sidewalk', 'sign',
    'sky', 'snow', 'sofa', 'table', 'track', 'train', 'tree', 'truck', 'tv monitor', 'wall',
    'water', 'window', 'wood',
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadSegAnnotations'),
    dict(type='mmseg.PackSegInputs'),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='PascalContext59OpenVocabDataset',
        data_root='data/VOCdevkit/VOC2010/',
        ann_file='ImageSets/SegmentationContext/val.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='OpenVocabIoUMetric')
test_evaluator = val_evaluator
