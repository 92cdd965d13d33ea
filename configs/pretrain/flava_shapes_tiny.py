# FLAVA-like pretraining on vlkd-shapes: unimodal and multimodal masked modelling + ITC.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/flava_shapes_tiny.py
#
# Image encoder: a ViT (32 px, 8 px patches) with a learned [MASK] patch; text encoder: a
# 2-layer BERT; multimodal encoder: a 2-layer single-stream transformer over both.
# - ITC between the projected [CLS] features of the two encoders (the joint space);
# - MIM: 40% of the patches masked, their normalised pixels regressed from the image
#   encoder (unimodal);
# - MLM: 15% of the caption tokens masked, predicted by the text encoder alone;
# - masked multimodal modelling: both masked together, fused, and both recovered.
# The masked image and the masked caption are shared by the unimodal and the multimodal
# objectives (one masking each per step).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 200
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(
        type='ViTPatchEncoder', mask_token=True,
        vision_cfg=dict(image_size={{_base_.image_size}}, patch_size=8, width=width, layers=4,
                        head_width=32)),
    text_encoder=dict(
        type='BertTextEncoder', max_length=24,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='SingleStreamFusion', width=width, depth=2, num_heads=4),
    objectives=dict(
        itc=dict(type='ImageTextContrastTask', embed_dim=128, text_pool='mean',
                 loss=dict(type='ImageTextContrastiveLoss', label_smoothing=0.1)),
        mim=dict(type='MaskedImageTask', mask_ratio=0.4, weight=0.5),
        mlm=dict(type='MaskedLanguageTask', mask_prob=0.15, with_image=False, weight=0.5),
        mmm=dict(type='MaskedMultimodalTask', text_mask_prob=0.15, image_mask_ratio=0.4,
                 weight=0.5)),
    zero_shot=dict(classes={{_base_.classes}}, templates='shapes'))

# tools/test.py: retrieval in the ITC space on the 200 val scenes
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
