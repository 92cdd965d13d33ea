# SimVLM on vlkd-shapes: prefix language modelling, the only objective.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/simvlm_shapes_tiny.py
#
# A 2-layer ViT encodes the 32 px image; its tokens and the caption's WordPiece embeddings
# go through a 4-layer single-stream transformer, image first. Attention is bidirectional
# over the image and the first P caption tokens (P drawn uniformly per caption) and causal
# over the rest, whose next tokens are predicted.
# No joint embedding space: zero-shot classification picks the class whose prompt "a
# {class}" is most likely (mean log-likelihood per token) after the image. Not usable as a
# ViLD teacher.
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 200
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(
        type='ViTPatchEncoder',
        vision_cfg=dict(image_size={{_base_.image_size}}, patch_size=8, width=width, layers=2,
                        head_width=32)),
    # embeddings only: text tokens must not have seen later tokens before the causal part
    text_encoder=dict(
        type='BertTextEncoder', max_length=24, num_layers=0,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=1, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='SingleStreamFusion', width=width, depth=4, num_heads=4, image_first=True),
    objectives=dict(prefix_lm=dict(type='PrefixLanguageTask', random_prefix=True)),
    zero_shot=dict(classes={{_base_.classes}}, templates=['a {}']))

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
