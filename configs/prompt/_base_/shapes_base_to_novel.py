# vlkd-shapes object crops for prompt learning, base-to-novel protocol (CoCoOp):
# train on `shots` crops of each of the 9 base classes (drawn from the train split with
# `seed`); evaluate on every val / test crop, reporting base accuracy (base crops among the
# base classes), novel accuracy (novel crops among star, heart, crescent) and their
# harmonic mean H, plus top1 over all 12 classes.
# Methods inherit this file and add model=dict(type=..., ...), the optimizer and schedule.
# The few-shot protocol (train and test on all classes) is in configs/prompt/few_shot/.
_base_ = ['../../_base_/default_runtime.py']
custom_imports = dict(imports=['vlkd.prompt', 'vlkd.datasets'], allow_failed_imports=False)

data_root = 'data/shapes/'
all_classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
               'heart', 'crescent', 'ellipse', 'arrow']
novel_classes = ['star', 'heart', 'crescent']
base_classes = [c for c in all_classes if c not in novel_classes]
image_size = 32  # crops are resized to the teacher's input side
shots = 16
seed = 1

# the tiny CLIP teacher of `python tools/train.py configs/pretrain/clip_shapes_tiny.py`
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/clip_shapes_tiny')
model = dict(teacher=teacher, classes=base_classes, test_classes=all_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # the box enlarged 1-1.5x about a centre moved by up to 10% of its size
    dict(type='CropRegion', scale_range=(1.0, 1.5), max_shift=0.1),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='RandomFlipImageText', prob=0.5),
    dict(type='PackImageTextInputs', meta_keys=('img_id', 'crop_bbox')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropRegion'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='PackImageTextInputs', meta_keys=('img_id', 'crop_bbox')),
]


def crops(split, pipeline, test_mode):
    return dict(type='ShapesObjectCropDataset', data_root=data_root,
                ann_file=f'annotations/instances_{split}.json',
                data_prefix=dict(img=f'images/{split}/'), test_mode=test_mode,
                pipeline=pipeline)


# evaluation sets: every crop of the classes listed (all 12 here; methods that score only
# their training classes set val_dataloader.dataset.classes=base_classes)
def every_crop(split):
    return dict(type='FewShotDataset', shots=None, classes=all_classes,
                dataset=crops(split, test_pipeline, True))


train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FewShotDataset', shots=shots, seed=seed, classes=base_classes,
                 dataset=crops('train', train_pipeline, False)))
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=every_crop('val'))
test_dataloader = dict(val_dataloader, dataset=every_crop('test'))
val_evaluator = dict(type='BaseNovelAccuracy', novel_classes=novel_classes)
test_evaluator = val_evaluator

# methods set max_epochs; validation and the checkpoint come at the last epoch
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10000, save_last=True,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=True)
randomness = dict(seed=seed)
