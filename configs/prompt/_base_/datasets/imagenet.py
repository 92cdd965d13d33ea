# ImageNet-1k in the ImageFolder layout under data/imagenet/: 1000 classes; CoOp tests on the
# official val split, so test/ may be a link to val/.
#   data/imagenet/classnames.txt, data/imagenet/{train,val,test}/<folder>/<images>
# Template: CoOp's for this dataset. Base-to-novel on the CLIP ViT-B/16 teacher of
# ../imagefolder_base_to_novel.py; a method config inherits this file
# (configs/prompt/README.md).
_base_ = ['../imagefolder_base_to_novel.py']

data_root = 'data/imagenet/'
class_file = data_root + 'classnames.txt'
model = dict(classes=dict(file=class_file, subset='base'),
             test_classes=dict(file=class_file, subset='all'),
             templates=['a photo of a {}.'])
train_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='base'),
                                     dataset=dict(data_root=data_root)))
val_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='all'),
                                   dataset=dict(data_root=data_root)))
test_dataloader = dict(dataset=dict(classes=dict(file=class_file, subset='all'),
                                    dataset=dict(data_root=data_root)))
val_evaluator = dict(novel_classes=dict(file=class_file, subset='novel'))
test_evaluator = dict(novel_classes=dict(file=class_file, subset='novel'))
