# MaskCLIP zero-shot baseline on ADE20K-150 val (mIoU over the 150 classes). Evaluation only,
# the teacher loads its own weights:
#   python tools/test.py configs/seg/maskclip_vit_b16_ade20k.py
_base_ = ['./_base_/maskclip_vit_b16.py', './_base_/ade20k_open_vocab.py',
          './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)
model = dict(classes={{_base_.classes}})
