# ViLD-text on OV-COCO: Faster R-CNN, ResNet-50-FPN, 1x schedule (12 epochs, batch 16). The
# box classifier is the teacher's text embeddings of the class names (48 base names in
# training, the 65 base + novel names in testing) and a learned background embedding;
# box regression is class-agnostic. Setup and results: configs/ov_coco/README.md.
#   python tools/make_ov_split.py coco data/coco/annotations
#   bash tools/dist_train.sh configs/ov_coco/vild_text_r50_fpn_1x_ov_coco.py 8
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/datasets/ov_coco_detection.py',
    '../_base_/det_runtime.py',
]

# The teacher: open_clip ViT-B/32 from a local weights file, e.g. the LAION-2B model of the
# vlkd zoo (python tools/zoo.py download clip-vit-b-32-laion2b-s34b-b79k
# --dir checkpoints/clip-vit-b-32-laion2b-s34b-b79k --trust-unverified). Class names are
# embedded with its prompt templates ('photo': 14 templates, embeddings averaged).
teacher = dict(type='OpenCLIPTeacher', model_name='ViT-B-32',
               pretrained='checkpoints/clip-vit-b-32-laion2b-s34b-b79k/'
                          'open_clip_model.safetensors',
               templates='photo')
# ImageNet ResNet-50 (torchvision's weights; mmdet's 'torchvision://resnet50' would download
# them at run time): see the README for the file.
backbone_weights = 'checkpoints/resnet50-0676ba61.pth'
# The classes (vlkd.datasets.ov_splits; a test checks), in COCO category-id order, the label
# order of the datasets. Names with a double underscore are helpers that mmengine leaves out
# of the final config (class lists there would make every config printout slow).
__base_classes = [
    'person', 'bicycle', 'car', 'motorcycle', 'train', 'truck', 'boat', 'bench', 'bird',
    'horse', 'sheep', 'bear', 'zebra', 'giraffe', 'backpack', 'handbag', 'suitcase', 'frisbee',
    'skis', 'kite', 'surfboard', 'bottle', 'fork', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'pizza', 'donut', 'chair', 'bed', 'toilet',
    'tv', 'laptop', 'mouse', 'remote', 'microwave', 'oven', 'toaster', 'refrigerator', 'book',
    'clock', 'vase', 'toothbrush']
__ov_classes = [
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
    'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
    'snowboard', 'kite', 'skateboard', 'surfboard', 'bottle', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'pizza', 'donut',
    'cake', 'chair', 'couch', 'bed', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'toothbrush']

model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_weights)),
    roi_head=dict(
        type='vlkd.ViLDRoIHead',
        bbox_head=dict(
            _delete_=True,
            type='vlkd.ViLDBBoxHead',
            train_classes=__base_classes,
            test_classes=__ov_classes,
            vocabulary=dict(teacher=teacher),
            temperature=0.01,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))))

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True,
                                     max_keep_ckpts=3),
                     logger=dict(type='LoggerHook', interval=50))
log_processor = dict(by_epoch=True)
