# Oracle: the same student trained on the labels of all 13 classes (nothing ignored), the
# upper bound of the zero-shot students.
#   python tools/train.py configs/seg/deeplabv3plus_r18_oracle_shapes.py
_base_ = ['./deeplabv3plus_r18_gt_shapes.py']

train_dataloader = dict(dataset=dict(ignore_classes=[]))
