# MaskCLIP zero-shot baseline on COCO-Stuff 164k val2017 (171 classes; seen / unseen mIoU of
# the zero-shot split). Evaluation only, the teacher loads its own weights:
#   python tools/test.py configs/seg/maskclip_vit_b16_coco_stuff.py
_base_ = ['./_base_/maskclip_vit_b16.py', './_base_/coco_stuff164k_zero_shot.py',
          './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)
model = dict(classes={{_base_.coco_stuff_classes}})
