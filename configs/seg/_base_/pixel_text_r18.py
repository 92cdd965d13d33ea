# A small open-vocabulary segmenter for 128 px vlkd-shapes images: ResNet-18-V1c at a
# quarter of the width (output stride 16: dilated last stage) and a PixelTextHead whose
# decoder the config that inherits this one chooses (DeepLabV3+ by default). About 0.25 s a
# training step of 8 images on one CPU core. Pixels are classified by
# cosine similarity to the teacher's text embeddings of the class names; background has a
# learned embedding. Inheriting configs set the teacher and the losses.
teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/clip_shapes_tiny')
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    _scope_='mmseg',
    type='vlkd.OpenVocabEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size_divisor=32,
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 2),
        strides=(1, 2, 2, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='vlkd.PixelTextHead',
        decoder=dict(
            type='DepthwiseSeparableASPPHead',
            in_channels=128,
            in_index=3,
            channels=64,
            dilations=(1, 2, 3, 4),  # on the 8 x 8 map of a 128 px image
            c1_in_channels=16,
            c1_channels=16,
            dropout_ratio=0.1,
            norm_cfg=norm_cfg,
            align_corners=False),
        vocabulary=dict(teacher=teacher),
        temperature=0.01,
        background='learned',
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
