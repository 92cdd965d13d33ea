# CoOp with class-specific contexts (CSC): one set of 4 context vectors per class,
# each initialised from "a picture of a". It
# scores only its training classes, so base-to-novel evaluates the 9 base classes.
#   python tools/train.py configs/prompt/coop_csc_shapes.py
_base_ = ['./coop_shapes.py']

model = dict(class_specific=True, test_classes={{_base_.base_classes}})
val_dataloader = dict(dataset=dict(classes={{_base_.base_classes}}))
test_dataloader = dict(dataset=dict(classes={{_base_.base_classes}}))
val_evaluator = dict(novel_classes=None)
test_evaluator = dict(novel_classes=None)
