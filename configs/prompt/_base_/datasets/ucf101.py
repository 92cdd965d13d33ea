# UCF101 (middle frames) in the ImageFolder layout under data/ucf101/: 101 actions, one image per
# video: its middle frame.
#   data/ucf101/classnames.txt, data/ucf101/{train,val,test}/<folder>/<images>
# Template: CoOp's for this dataset. Base-to-novel on the CLIP ViT-B/16 teacher of
# ../imagefolder_base_to_novel.py; a method config inherits this file
# (configs/prompt/README.md).
_base_ = ['../imagefolder_base_to_novel.py']

data_root = 'data/ucf101/'
class_file = data_root + 'classnames.txt'
model = dict(classes=dict(file=class_file, subset='base'),
             test_classes=dict(file=class_file, subset='all'),
             templates=['a photo of a person doing {}.'])
train_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='base'),
                                     dataset=dict(data_root=data_root)))
val_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='all'),
                                   dataset=dict(data_root=data_root)))
test_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='all'),
                                    dataset=dict(data_root=data_root)))
val_evaluator = dict(novel_classes=dict(file=class_file, subset='novel'))
test_evaluator = dict(novel_classes=dict(file=class_file, subset='novel'))
