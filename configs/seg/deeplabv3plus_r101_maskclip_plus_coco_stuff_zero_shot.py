# MaskCLIP+ on COCO-Stuff 164k, zero-shot (transductive) setting: DeepLabV3+ R101-D8 with a
# pixel-text head (no background class), ground truth on the 156 seen classes and the CLIP
# ViT-B/16 teacher's confident pseudo labels among the 15 unseen classes on the pixels
# without a label. 80k iterations of batch 16 (4 GPUs x 4).
#   bash tools/dist_train.sh configs/seg/deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot.py 4
#   python tools/test.py configs/seg/deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot.py \
#       work_dirs/deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot
_base_ = ['./_base_/pixel_text_r101_d8.py', './_base_/coco_stuff164k_zero_shot_train.py',
          './_base_/seg_schedule_20k.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

model = dict(
    decode_head=dict(train_classes={{_base_.coco_stuff_classes}},
                     test_classes={{_base_.coco_stuff_classes}}),
    pseudo_label_loss=dict(type='PseudoLabelLoss', score_thr=0.5, unlabelled_only=True),
    pseudo_label_classes={{_base_.coco_stuff_unseen_classes}},
    prompt_denoising=0.5,
    key_smoothing=1.0)
max_iters = 80000
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
                        by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
