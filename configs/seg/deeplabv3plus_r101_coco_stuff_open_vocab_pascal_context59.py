# Open-vocabulary transfer: the COCO-Stuff student of
# deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot.py segments Pascal-Context-59 (its 59
# class names as the test vocabulary). Evaluation only:
#   python tools/test.py configs/seg/deeplabv3plus_r101_coco_stuff_open_vocab_pascal_context59.py \
#       work_dirs/deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot
_base_ = ['./_base_/pixel_text_r101_d8.py', './_base_/coco_stuff_classes.py',
          './_base_/pascal_context59_open_vocab.py', './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

model = dict(decode_head=dict(train_classes={{_base_.coco_stuff_classes}},
                              test_classes={{_base_.classes}}),
             test_cfg=dict(crop_size=(480, 480), stride=(320, 320)))
