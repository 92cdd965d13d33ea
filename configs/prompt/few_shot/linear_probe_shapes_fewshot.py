# linear_probe_shapes.py under the few-shot protocol: train on `shots` crops of each of the 12
# classes and report top-1 over all of them (CoOp's 1/2/4/8/16 shots, several seeds):
#   python tools/train.py configs/prompt/few_shot/linear_probe_shapes_fewshot.py \
#       --cfg-options train_dataloader.dataset.shots=4 train_dataloader.dataset.seed=2 \
#       randomness.seed=2
_base_ = ['../linear_probe_shapes.py']

# (it scores only its training classes: now all 12)
model = dict(classes={{_base_.all_classes}}, test_classes={{_base_.all_classes}})
val_dataloader = dict(dataset=dict(classes={{_base_.all_classes}}))
test_dataloader = dict(dataset=dict(classes={{_base_.all_classes}}))
train_dataloader = dict(dataset=dict(classes={{_base_.all_classes}}))
val_evaluator = dict(novel_classes=None)
test_evaluator = dict(novel_classes=None)
