# GLIP-style student in the quickstart setting (vlkd-shapes table): the quickstart's detector
# (configs/quickstart/vild_text.py: CLIP ResNet trunk of the quickstart teacher as backbone,
# FPN, RPN, 600 iterations, base-class boxes only) whose box classifier is region-word
# alignment with the tokens of a class prompt ("circle. square. ..."), encoded by the
# quickstart teacher's CLIP text tower, trained with GLIP's focal grounding loss. The
# training prompt lists the 9 base classes; the test prompt lists all 12.
#   python tools/train.py configs/quickstart/teacher.py
#   python tools/train.py configs/glip/glip_clip_trunk_shapes.py
#   python tools/test.py configs/glip/glip_clip_trunk_shapes.py \
#       work_dirs/glip/glip_clip_trunk_shapes --work-dir work_dirs/glip/glip_clip_trunk_shapes/test
_base_ = '../quickstart/vild_text.py'
work_dir = 'work_dirs/glip/glip_clip_trunk_shapes'

model = dict(
    roi_head=dict(
        type='StandardRoIHead',
        bbox_head=dict(
            _delete_=True,
            type='vlkd.GLIPBBoxHead',
            train_classes={{_base_.base_classes}},
            test_classes={{_base_.all_classes}},
            text_encoder={{_base_.teacher}},
            embed_dim=128,
            logit_scale=10.0,
            grounding=dict(loss_type='focal', alpha=0.25, gamma=2.0, prior_prob=0.01),
            in_channels=64,
            fc_out_channels=256,
            roi_feat_size=7,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))))
