# Oracle for the vlkd-shapes table: the ViLD-text detector trained with the boxes of ALL
# classes, novel ones included (instances_train.json); the upper bound of the students.
#   python tools/train.py configs/vild/oracle_vild_text_r18_fpn_shapes.py
_base_ = './vild_text_r18_fpn_shapes.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(train_classes={{_base_.all_classes}})))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train.json',
                 metainfo=dict(classes={{_base_.all_classes}})))
