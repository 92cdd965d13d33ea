# MaskCLIP+ on Pascal VOC 2012, zero-shot (transductive) setting: DeepLabV3+ R101-D8 with a
# pixel-text head, ground truth on the 15 seen classes + background, and the CLIP ViT-B/16
# teacher's pseudo labels (MaskCLIP dense embeddings, prompt denoising and key smoothing) on
# the pixels without a label, among the 5 unseen classes, where the teacher is confident.
# 20k iterations of batch 16 (4 GPUs x 4). Evaluation: seen / unseen mIoU, hIoU.
#   python tools/zoo.py download clip-vit-b-16-openai --dir checkpoints/clip-vit-b-16-openai
#   bash tools/dist_train.sh configs/seg/deeplabv3plus_r101_maskclip_plus_voc12_zero_shot.py 4
#   python tools/test.py configs/seg/deeplabv3plus_r101_maskclip_plus_voc12_zero_shot.py \
#       work_dirs/deeplabv3plus_r101_maskclip_plus_voc12_zero_shot
_base_ = ['./_base_/pixel_text_r101_d8.py', './_base_/voc12_zero_shot_train.py',
          './_base_/seg_schedule_20k.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

model = dict(
    decode_head=dict(train_classes={{_base_.classes}}, test_classes={{_base_.classes}}),
    pseudo_label_loss=dict(type='PseudoLabelLoss', score_thr=0.5, unlabelled_only=True),
    pseudo_label_classes={{_base_.unseen_classes}},
    prompt_denoising=0.5,
    key_smoothing=1.0)
