# Oracle of the CLIP-trunk students: upernet_clip_trunk_gt_shapes.py trained on the labels
# of all 13 classes (nothing ignored).
#   python tools/train.py configs/seg/upernet_clip_trunk_oracle_shapes.py
_base_ = ['./upernet_clip_trunk_gt_shapes.py']

train_dataloader = dict(dataset=dict(ignore_classes=[]))
