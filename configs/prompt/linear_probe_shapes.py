# Linear probe on vlkd-shapes crops: logistic regression (L-BFGS, CLIP's search of C on a
# held-out quarter of the shots) on the frozen teacher's embeddings of the training crops
# (one unaugmented epoch). A probe scores only its training classes: base-to-novel
# evaluates the 9 base classes.
#   python tools/train.py configs/prompt/linear_probe_shapes.py
_base_ = ['./_base_/shapes_base_to_novel.py']

model = dict(type='LinearProbe', test_classes={{_base_.base_classes}}, cache_epochs=1,
             val_fraction=0.25)
train_dataloader = dict(dataset=dict(dataset=dict(pipeline={{_base_.test_pipeline}})))
val_dataloader = dict(dataset=dict(classes={{_base_.base_classes}}))
test_dataloader = dict(dataset=dict(classes={{_base_.base_classes}}))
val_evaluator = dict(novel_classes=None)
test_evaluator = dict(novel_classes=None)

train_cfg = dict(max_epochs=1)
# the probe is fitted by L-BFGS, not by this optimizer (mmengine builds one for training)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.0))
