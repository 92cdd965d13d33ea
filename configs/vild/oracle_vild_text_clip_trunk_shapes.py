# Oracle in the quickstart setting (vlkd-shapes table): the quickstart's ViLD-text student
# (configs/quickstart/vild_text.py: CLIP ResNet trunk of the quickstart teacher as backbone,
# 600 iterations) trained with the boxes of ALL classes, novel ones included
# (instances_train.json); the upper bound of the distilled students.
#   python tools/train.py configs/quickstart/teacher.py
#   python tools/train.py configs/vild/oracle_vild_text_clip_trunk_shapes.py
#   python tools/test.py configs/vild/oracle_vild_text_clip_trunk_shapes.py \
#       work_dirs/vild/oracle_vild_text_clip_trunk_shapes
_base_ = '../quickstart/vild_text.py'
work_dir = 'work_dirs/vild/oracle_vild_text_clip_trunk_shapes'

model = dict(
    roi_head=dict(
        bbox_head=dict(train_classes={{_base_.all_classes}})))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train.json',
                 metainfo=dict(classes={{_base_.all_classes}})))
