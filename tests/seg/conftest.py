"""Fixtures of the segmentation tests: a tiny pixel-text student config."""
import pytest
from mmengine.config import ConfigDict

SHAPES_VOCABULARY = ['background', 'circle', 'square', 'triangle', 'star', 'hexagon',
                     'pentagon', 'diamond', 'cross', 'heart', 'crescent', 'ellipse', 'arrow']


@pytest.fixture
def student_cfg(tiny_teacher_cfg):
    """Config of a tiny OpenVocabEncoderDecoder (ResNet-18 at 1/8 width, FCN decoder) over
    the 13 vlkd-shapes labels, with the tiny random CLIP teacher."""
    def make(**overrides):
        norm = dict(type='BN', requires_grad=True)
        head = dict(
            type='vlkd.PixelTextHead',
            decoder=dict(type='FCNHead', in_channels=64, channels=16, num_convs=1,
                         concat_input=False, dropout_ratio=0.0, norm_cfg=norm),
            train_classes=SHAPES_VOCABULARY, test_classes=SHAPES_VOCABULARY,
            vocabulary=dict(teacher=tiny_teacher_cfg), temperature=0.1)
        head.update(overrides.pop('decode_head', {}))
        return dict(
            _scope_='mmseg',
            type='vlkd.OpenVocabEncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                                   size_divisor=8,
                                   seg_pad_val=255),
            backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                          out_indices=(3,), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                          norm_cfg=norm, contract_dilation=True),
            decode_head=head,
            test_cfg=ConfigDict(mode='whole'),
            **overrides)
    return make
