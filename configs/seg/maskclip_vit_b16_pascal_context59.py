# MaskCLIP zero-shot baseline on Pascal-Context-59 val (mIoU over the 59 classes).
# Evaluation only, the teacher loads its own weights:
#   python tools/test.py configs/seg/maskclip_vit_b16_pascal_context59.py
_base_ = ['./_base_/maskclip_vit_b16.py', './_base_/pascal_context59_open_vocab.py',
          './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)
model = dict(classes={{_base_.classes}})
