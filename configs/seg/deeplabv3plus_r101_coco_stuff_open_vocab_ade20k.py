# Open-vocabulary transfer: the COCO-Stuff student of
# deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot.py segments ADE20K-150 (its 150 class
# names as the test vocabulary; nothing trained on ADE20K). Evaluation only:
#   python tools/test.py configs/seg/deeplabv3plus_r101_coco_stuff_open_vocab_ade20k.py \
#       work_dirs/deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot
_base_ = ['./_base_/pixel_text_r101_d8.py', './_base_/coco_stuff_classes.py',
          './_base_/ade20k_open_vocab.py', './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

model = dict(decode_head=dict(train_classes={{_base_.coco_stuff_classes}},
                              test_classes={{_base_.classes}}))
