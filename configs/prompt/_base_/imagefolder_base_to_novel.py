# A classification dataset in the ImageFolder layout, base-to-novel protocol (CoCoOp):
#   DATA_ROOT/classnames.txt          "<folder> <class name>" per line, in label order
#   DATA_ROOT/{train,val,test}/<folder>/<images>
# The first half of the classes (ceil(C / 2), in file order) is base, the rest novel. Train
# on `shots` images of each base class (seed `seed`); test on every test image, reporting
# base / novel accuracy and H. The files in datasets/ set DATA_ROOT and the templates of the
# usual 11 datasets; a method config inherits one and adds model=dict(type=...), the
# optimizer and the schedule (configs/prompt/README.md). Few-shot protocol: set the
# classes of the model, the training set and the test set to dict(file=..., subset='all')
# and val_evaluator.novel_classes=None.
_base_ = ['../../_base_/default_runtime.py']
custom_imports = dict(imports=['vlkd.prompt', 'vlkd.datasets'], allow_failed_imports=False)

data_root = 'data/imagefolder/'  # the files in datasets/ replace it
image_size = 224
shots = 16
seed = 1

# CLIP ViT-B/16 with local weights (vlkd downloads nothing: fetch the file yourself)
teacher = dict(type='OpenCLIPTeacher', model_name='ViT-B-16',
               pretrained='checkpoints/open_clip/ViT-B-16-openai.bin')
model = dict(teacher=teacher,
             classes=dict(file=data_root + 'classnames.txt', subset='base'),
             test_classes=dict(file=data_root + 'classnames.txt', subset='all'),
             templates=['a photo of a {}.'])

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=image_size, scale=(0.08, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackImageTextInputs', meta_keys=('img_path',)),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShorterSide', size=image_size),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='PackImageTextInputs', meta_keys=('img_path',)),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FewShotDataset', shots=shots, seed=seed,
                 classes=dict(file=data_root + 'classnames.txt', subset='base'),
                 dataset=dict(type='ImageFolderDataset', data_root=data_root,
                              class_file='classnames.txt', data_prefix=dict(img='train/'),
                              pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=100,
    num_workers=4,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FewShotDataset', shots=None,
                 classes=dict(file=data_root + 'classnames.txt', subset='all'),
                 dataset=dict(type='ImageFolderDataset', data_root=data_root,
                              class_file='classnames.txt', data_prefix=dict(img='val/'),
                              test_mode=True, pipeline=test_pipeline)))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(type='FewShotDataset', shots=None,
                 classes=dict(file=data_root + 'classnames.txt', subset='all'),
                 dataset=dict(type='ImageFolderDataset', data_root=data_root,
                              class_file='classnames.txt', data_prefix=dict(img='test/'),
                              test_mode=True, pipeline=test_pipeline)))
val_evaluator = dict(type='BaseNovelAccuracy',
                     novel_classes=dict(file=data_root + 'classnames.txt', subset='novel'))
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10000, save_last=True,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=True)
randomness = dict(seed=seed)
