# ALBEF on vlkd-shapes: align before fuse.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/albef_shapes_tiny.py
#
# 1. Unimodal towers: a ResNet-18 grid on 32 px images (torchvision, random init) and the
#    first 2 layers of a BERT (WordPiece, bert-base-uncased vocabulary). Their summary
#    features are projected to a 128-d joint space and aligned by ITC against the momentum
#    model's features and queues. (ALBEF uses a ViT; with a 4-layer ViT in its place this
#    recipe learns far slower on these CPU budgets: see configs/pretrain/README.md.)
# 2. Fusion: 2 more BERT-style layers whose text tokens cross-attend to the image tokens
#    (at 32 px the ResNet's last feature map is a single cell).
#    ITM classifies the fused [CLS]; each image gets a hard negative caption (and each
#    caption a hard negative image) drawn from the softmax of the ITC similarities.
# 3. MLM: 15% of the caption tokens masked, predicted through the fusion from the image.
# Momentum distillation: an EMA copy of the model gives soft targets for ITC and MLM, mixed
# in with alpha = 0.4, ramped up over the first 100 steps. ALBEF's m = 0.995 suits its
# hundreds of thousands of steps; in a few hundred the copy would stay near the random
# initialisation, so m = 0.95 here (it follows the model with a lag of about 20 steps).
# The text side of ITC reads the mean of the caption tokens (a freshly initialised BERT's
# [CLS] is nearly the same for every caption: the alignment starts later from it).
# The unimodal towers and the ITC projections form the joint space: zero-shot validation
# here, and `dict(type='VLKDTeacher', checkpoint='work_dirs/albef_shapes_tiny')` teaches a
# ViLD student with them.
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 150
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
    fusion=dict(type='CrossAttentionFusion', width=width, depth=2, num_heads=4),
    objectives=dict(
        # a small queue: with 12 classes most queued captions of a crop's class are false
        # negatives
        itc=dict(type='MomentumContrastTask', embed_dim=128, queue_size=256, text_pool='mean',
                 loss=dict(type='MomentumContrastiveLoss')),
        itm=dict(type='ImageTextMatchingTask', hard_negatives=True),
        mlm=dict(type='MaskedLanguageTask', mask_prob=0.15, distill=True)),
    momentum=dict(momentum=0.95, alpha=0.4, ramp_iters=100),
    zero_shot=dict(classes={{_base_.classes}}, templates='shapes'))

# tools/test.py: retrieval (joint space) and ITM accuracy (fused pairs) on the 200 val scenes
test_dataloader = {{_base_.retrieval_dataloader}}
test_evaluator = [dict(type='ImageTextRetrievalMetric', ks=(1, 5, 10)), dict(type='ImageTextMatchingAccuracy')]

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
