# vlkd-shapes semantic segmentation in the zero-shot protocol, evaluation side: val / test
# masks with all 13 labels (background + 12 shapes); metric: seen / unseen mIoU and hIoU
# (background is a seen class). The training side is in shapes_seg_train.py.
# Make the data with `python tools/make_shapes.py --out data/shapes`.
data_root = 'data/shapes/'
# the fixed split of vlkd.datasets.shapes (a test checks these lists against it)
shape_classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond',
                 'cross', 'heart', 'crescent', 'ellipse', 'arrow']
unseen_classes = ['star', 'heart', 'crescent']
classes = ['background'] + shape_classes  # label order of the masks
seen_classes = [c for c in classes if c not in unseen_classes]
image_scale = (128, 128)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations'),
    dict(type='mmseg.PackSegInputs'),
]

val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesZeroShotSegDataset',
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesZeroShotSegDataset',
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='semantic/test'),
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = dict(type='OpenVocabIoUMetric', unseen_classes=unseen_classes)
test_evaluator = val_evaluator
# how the teacher's text tower describes the background: the background kinds of the
# shapes captions ("... on a striped background")
background_synonyms = dict(background=['background', 'noisy background', 'striped background',
                                       'gradient background', 'checkered background'])
# the teacher's dense view on these 128 px images: its embedding of a 40 px window around
# every cell of an 8 x 8 grid (objects are 14-56 px; the tiny CLIP teacher was trained on
# 32 px object crops and reads single locations of larger inputs poorly, see README)
dense_view = dict(type='SlidingWindowDense', window=40, stride=16)
# where the teacher's dense maps of the train images are cached (one directory per teacher
# and view; BuildDenseTeacherCacheHook fills it before the first training that needs it)
dense_cache = 'work_dirs/seg_cache/clip_shapes_tiny_window40_stride16'
