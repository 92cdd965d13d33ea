# The tiny CLIP teacher of configs/pretrain/clip_shapes_tiny.py with a ViT image tower, for
# the prompt methods that put tokens into a ViT (VPT, MaPLe): 32 px input, 4 px patches
# (64 patch tokens), width 128, 4 layers.
#   python tools/train.py configs/prompt/clip_vit_shapes_tiny.py
_base_ = ['../pretrain/clip_shapes_tiny.py']

model = dict(model_cfg=dict(vision_cfg=dict(
    _delete_=True, image_size={{_base_.image_size}}, patch_size=4, width=128, layers=4,
    head_width=32)))
