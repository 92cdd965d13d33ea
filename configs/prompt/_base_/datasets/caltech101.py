# Caltech101 in the ImageFolder layout under data/caltech101/: 100 classes (CoOp drops
# BACKGROUND_Google and Faces_easy).
#   data/caltech101/classnames.txt, data/caltech101/{train,val,test}/<folder>/<images>
# Template: CoOp's for this dataset. Base-to-novel on the CLIP ViT-B/16 teacher of
# ../imagefolder_base_to_novel.py; a method config inherits this file
# (configs/prompt/README.md).
_base_ = ['../imagefolder_base_to_novel.py']

data_root = 'data/caltech101/'
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
