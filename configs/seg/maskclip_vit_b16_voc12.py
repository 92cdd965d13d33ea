# MaskCLIP zero-shot baseline on Pascal VOC 2012 val (21 classes; seen / unseen mIoU of the
# zero-shot split, though the teacher was trained on none of their masks). Evaluation only;
# the teacher loads its own weights (no checkpoint argument):
#   python tools/test.py configs/seg/maskclip_vit_b16_voc12.py
_base_ = ['./_base_/maskclip_vit_b16.py', './_base_/voc12_zero_shot.py',
          './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)
model = dict(classes={{_base_.classes}})
