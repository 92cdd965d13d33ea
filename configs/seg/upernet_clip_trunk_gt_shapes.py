# deeplabv3plus_r18_gt_shapes.py (ground truth of the seen classes only) with the student on
# the teacher's CLIP ResNet trunk and a UPerNet decoder (_base_/pixel_text_clip_trunk.py),
# trained for 1200 iterations.
#   python tools/train.py configs/seg/upernet_clip_trunk_gt_shapes.py
_base_ = ['./_base_/pixel_text_clip_trunk.py', './_base_/shapes_seg_train.py',
          './_base_/shapes_seg_schedule_1200.py']
model = dict(
    decode_head=dict(train_classes={{_base_.classes}}, test_classes={{_base_.classes}}))
