# UniCL on vlkd-shapes: image-text-label contrast in one space.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/unicl_shapes_tiny.py
#
# The training stream mixes image-label data (object close-ups whose caption is a template
# of the class name: label = the class) and image-text data (scenes with a free caption:
# label = the image). In the contrastive loss every pair sharing a label is a positive, so
# two star crops in a batch are not pushed apart as CLIP's InfoNCE would do.
# Towers: a ResNet-18 (torchvision, random init; at 32 px its last feature map is one
# cell) and a 2-layer BERT-style text encoder (mean of its tokens), projected to 128-d.
# (A 4-layer ViT in its place learns far slower here: see configs/pretrain/README.md.)
# The joint space teaches a ViLD student: dict(type='VLKDTeacher',
# checkpoint='work_dirs/unicl_shapes_tiny').
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 400
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(type='CNNGridEncoder', backbone='resnet18', out_dim=width,
                       image_size={{_base_.image_size}}),
    text_encoder=dict(
        type='BertTextEncoder', max_length=24,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    # labels: the unicl_label of ShapesCaptionDataset (class of a crop, image of a scene)
    objectives=dict(itc=dict(type='ImageTextLabelContrastTask', embed_dim=128, text_pool='mean')),
    zero_shot=dict(classes={{_base_.classes}}, templates='shapes'))

# tools/test.py: retrieval in the joint space on the 200 val scenes
test_dataloader = {{_base_.retrieval_dataloader}}
test_evaluator = [dict(type='ImageTextRetrievalMetric', ks=(1, 5, 10))]

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
