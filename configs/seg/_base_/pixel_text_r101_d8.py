# The benchmark student (MaskCLIP+'s): DeepLabV3+ on ResNet-101-V1c (output stride 8) with a
# PixelTextHead over the teacher's text space, for 512 px crops. The teacher: OpenAI's CLIP
# ViT-B/16 (MaskCLIP's), from the vlkd zoo:
#   python tools/zoo.py download clip-vit-b-16-openai --dir checkpoints/clip-vit-b-16-openai
# The backbone starts from mmseg's ImageNet ResNet-101-V1c file (mmseg's
# 'open-mmlab://resnet101_v1c' downloads it at run time; vlkd reads it from disk):
backbone_weights = 'checkpoints/resnet101_v1c-e67eebb6.pth'
teacher = dict(type='OpenAICLIPTeacher', archive='checkpoints/clip-vit-b-16-openai/ViT-B-16.pt',
               model_name='ViT-B-16-quickgelu', templates='photo')
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    _scope_='mmseg',
    type='vlkd.OpenVocabEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(512, 512),
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_weights)),
    decode_head=dict(
        type='vlkd.PixelTextHead',
        decoder=dict(
            type='DepthwiseSeparableASPPHead',
            in_channels=2048,
            in_index=3,
            channels=512,
            dilations=(1, 12, 24, 36),
            c1_in_channels=256,
            c1_channels=48,
            dropout_ratio=0.1,
            norm_cfg=norm_cfg,
            align_corners=False),
        vocabulary=dict(teacher=teacher),
        temperature=0.05,
        background='text',
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0)),
    teacher=teacher,
    # MaskCLIP's teacher view: ViT-B/16 dense embeddings of the 512 px crops (32 x 32)
    dense=dict(type='EncodeDense'),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
