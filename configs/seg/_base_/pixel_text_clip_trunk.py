# The pixel-text segmenter of pixel_text_r18.py on the teacher's own CLIP ResNet trunk
# (vlkd.CLIPResNetBackbone: its stem and four stages copied and trained, as the quickstart
# detectors start) with a UPerNet decoder over the four stages (strides 4 to 32: 32 x 32 to
# 4 x 4 on a 128 px image). Pixels are normalised as the teacher's tower expects them.
_base_ = ['./pixel_text_r18.py']
custom_imports = dict(imports=['vlkd.det', 'vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(mean=[122.770938, 116.7460125, 104.09373615],
                           std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(_delete_=True, type='vlkd.CLIPResNetBackbone',
                  teacher={{_base_.teacher}}),
    decode_head=dict(
        decoder=dict(
            _delete_=True,
            type='UPerHead',
            in_channels=[128, 256, 512, 1024],  # the tiny CLIP ResNet's stages (width 32)
            in_index=[0, 1, 2, 3],
            pool_scales=(1, 2, 4),  # the last map is 4 x 4
            channels=64,
            dropout_ratio=0.1,
            norm_cfg=norm_cfg,
            align_corners=False)))
