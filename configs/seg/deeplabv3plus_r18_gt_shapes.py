# Zero-shot segmentation on vlkd-shapes, ground truth only: a DeepLabV3+ (ResNet-18 at half
# width) pixel-text student trained on the labels of the seen classes (background and 9
# shapes; the pixels of star, heart and crescent are ignored). The unseen classes are known
# only through the teacher's text embeddings of their names.
#   python tools/train.py configs/pretrain/clip_shapes_tiny.py    # the teacher (text space)
#   python tools/train.py configs/seg/deeplabv3plus_r18_gt_shapes.py
#   python tools/test.py configs/seg/deeplabv3plus_r18_gt_shapes.py \
#       work_dirs/deeplabv3plus_r18_gt_shapes
_base_ = ['./_base_/pixel_text_r18.py', './_base_/shapes_seg_train.py',
          './_base_/shapes_seg_schedule.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

# the training vocabulary is the label numbering of the train masks (unseen names included
# but never a target here); testing uses the same 13 names
model = dict(
    decode_head=dict(train_classes={{_base_.classes}}, test_classes={{_base_.classes}}))
