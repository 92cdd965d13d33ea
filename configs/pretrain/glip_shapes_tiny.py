# GLIP-style grounding pretraining on vlkd-shapes regions: detection as region-word alignment.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/quickstart/vild_text.py          # the region detector
#   python tools/extract_regions.py --data-root data/shapes --split train \
#       --checkpoint work_dirs/quickstart/vild_text --gt-boxes
#   python tools/extract_regions.py --data-root data/shapes --split val \
#       --checkpoint work_dirs/quickstart/vild_text --gt-boxes
#   python tools/train.py configs/pretrain/glip_shapes_tiny.py
#
# The prompt is the base class names, "circle. square. triangle. hexagon. ...". Regions
# (the objects' boxes with the frozen detector's RoI features and box geometry) and the
# prompt's tokens (2-layer BERT) are fused by one co-attention layer (GLIP's deep fusion),
# projected to a 128-d space, and every region-token pair scored; the focal loss pulls
# each region towards the tokens of its class name and away from the others. Open
# vocabulary as OV-COCO: labels come from instances_train_base.json, so novel objects (star,
# heart, crescent) are background in training.
# Validation classifies each val object's region among all 12 class names (a prompt of the
# 12 names; a class scores the mean logit of its tokens).
_base_ = ['../_base_/default_runtime.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.vlp.region_data', 'vlkd.datasets'],
                      allow_failed_imports=False)

data_root = 'data/shapes/'
classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
           'heart', 'crescent', 'ellipse', 'arrow']
novel_classes = ['star', 'heart', 'crescent']
region_dir = 'regions/gt_boxes/'  # written by tools/extract_regions.py --gt-boxes
max_regions = 8
base_classes = [c for c in classes if c not in novel_classes]
max_iters = 200
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(type='RegionFeatureEncoder', out_dim=width, feature_dim=256),
    text_encoder=dict(
        type='BertTextEncoder', max_length=48,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='CoAttentionFusion', width=width, depth=1, num_heads=4),
    objectives=dict(
        grounding=dict(type='RegionGroundingTask', classes=base_classes, label_classes=classes,
                       embed_dim=128)),
    zero_shot=dict(classes=classes),
    data_preprocessor=dict(type='RegionDataPreprocessor'))

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='vlkd.region_text_collate', max_regions=max_regions),
    dataset=dict(
        type='RegionTextDataset',
        data_root=data_root,
        ann_file='annotations/captions_train.json',
        region_dir=region_dir + 'train/',
        items='images',
        pipeline=[
            dict(type='LoadRegionFile'),
            dict(type='AssignRegionLabels',
                 instances_file=data_root + 'annotations/instances_train_base.json'),
            dict(type='PackRegionTextInputs', meta_keys=('img_id', 'text', 'region_labels')),
        ]))
# val: zero-shot classification of every val object, from its own region alone
val_dataloader = dict(
    batch_size=128,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='vlkd.region_text_collate'),
    dataset=dict(
        type='ShapesObjectRegionDataset',
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        region_dir=region_dir + 'val/',
        test_mode=True))
val_evaluator = dict(type='ZeroShotCropAccuracy', novel_classes=novel_classes)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per paramwise_cfg setting (mmengine's default: one per parameter)
    constructor='GroupedOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'embedding': dict(decay_mult=0.0),
                                    'logit_scale': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
