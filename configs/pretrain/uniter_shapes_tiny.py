# UNITER on vlkd-shapes regions: a single-stream transformer over detector regions and words.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/quickstart/vild_text.py          # the region detector
#   python tools/extract_regions.py --data-root data/shapes --split train \
#       --checkpoint work_dirs/quickstart/vild_text --gt-boxes
#   python tools/extract_regions.py --data-root data/shapes --split val \
#       --checkpoint work_dirs/quickstart/vild_text --gt-boxes
#   python tools/train.py configs/pretrain/uniter_shapes_tiny.py
#
# Regions: the objects' boxes with the frozen ViLD-text detector's RoI features (256-d) and
# class distributions (12 classes + background); each region token is LayerNorm(W f + W g)
# with the box geometry g (corners, width, height, area), after a whole-image token.
# Words: WordPiece embeddings; both go through one 4-layer transformer (no unimodal layers).
# One modality is masked at a time:
# - MLM: 15% of the caption tokens masked, predicted from the rest and the regions;
# - masked region modelling (15% of the regions, features zeroed, geometry kept; the three
#   objectives share one masked pass): MRFR regresses the region feature, MRC predicts the
#   detector's top class, MRC-KL matches its class distribution;
# - ITM on the fused [CLS] (captions swapped with another image's), and WRA: the IPOT
#   transport distance between words and regions of the same matching pairs, lowered for
#   matches and raised for mismatches.
# Validation classifies each val object's region by the ITM score of "a {class}".
_base_ = ['../_base_/default_runtime.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.vlp.region_data', 'vlkd.datasets'],
                      allow_failed_imports=False)

data_root = 'data/shapes/'
classes = ['circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond', 'cross',
           'heart', 'crescent', 'ellipse', 'arrow']
novel_classes = ['star', 'heart', 'crescent']
region_dir = 'regions/gt_boxes/'  # written by tools/extract_regions.py --gt-boxes
max_regions = 8
max_iters = 150
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(type='RegionFeatureEncoder', out_dim=width, feature_dim=256,
                       image_token=True),
    text_encoder=dict(
        type='BertTextEncoder', max_length=32, num_layers=0,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=1, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='SingleStreamFusion', width=width, depth=4, num_heads=4),
    objectives=dict(
        mlm=dict(type='MaskedLanguageTask', mask_prob=0.15),
        mrfr=dict(type='MaskedFeatureRegressionTask', mask_ratio=0.15),
        mrc=dict(type='MaskedFeatureClassificationTask', num_classes=13, mask_ratio=0.15),
        mrc_kl=dict(type='MaskedFeatureClassificationTask', num_classes=13, soft_labels=True,
                    mask_ratio=0.15),
        itm=dict(type='ImageTextMatchingTask', hard_negatives=False),
        wra=dict(type='WordRegionAlignmentTask', weight=0.1)),
    zero_shot=dict(classes=classes, templates=['a {}']),
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
        region_dir=region_dir + 'train/'))
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
# tools/test.py: ITM accuracy on the val images' regions with their captions
test_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='vlkd.region_text_collate', max_regions=max_regions),
    dataset=dict(
        type='RegionTextDataset',
        data_root=data_root,
        ann_file='annotations/captions_val.json',
        region_dir=region_dir + 'val/',
        items='images',
        itm_negatives=True,
        test_mode=True))
test_evaluator = [dict(type='ImageTextMatchingAccuracy')]

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
