# One self-training round (ZS3Net / MaskCLIP+): the combined student relabels the train
# set (its confident unseen-class predictions on the pixels without a label), then trains
# on the new masks from its own weights, with all three losses as before.
#   python tools/train.py configs/seg/deeplabv3plus_r18_combined_shapes.py
#   python tools/relabel_seg.py configs/seg/deeplabv3plus_r18_combined_shapes.py \
#       work_dirs/deeplabv3plus_r18_combined_shapes --out-dir work_dirs/seg_self_training/masks
#   python tools/train.py configs/seg/deeplabv3plus_r18_self_training_shapes.py
_base_ = ['./deeplabv3plus_r18_combined_shapes.py']

relabelled_masks = 'work_dirs/seg_self_training/masks'
train_dataloader = dict(dataset=dict(
    data_root=None,
    data_prefix=dict(img_path='data/shapes/images/train', seg_map_path=relabelled_masks),
    ignore_classes=[]))  # the unseen pixels now carry the student's pseudo labels
load_from = 'work_dirs/deeplabv3plus_r18_combined_shapes/iter_300.pth'
