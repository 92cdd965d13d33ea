# ViLT on vlkd-shapes: a single-stream transformer straight on patch embeddings.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/vilt_shapes_tiny.py
#
# No visual backbone and no text encoder: 8 px patches of the 32 px image (linear patch
# embedding + positions) and WordPiece embeddings (word + position + type) are concatenated,
# tagged with modality embeddings and read by one 4-layer transformer.
# ITM: the fused [CLS] says whether the image and the caption match; negatives swap the
# caption (or the image) for another sample's, uniformly. MLM: 15% of the caption tokens
# masked and predicted from the image and the rest of the caption.
# No joint embedding space: zero-shot classification scores the crop against "a {class}"
# prompts with the ITM head. Not usable as a ViLD teacher (it cannot embed a crop alone).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 200
width = 128

model = dict(
    type='VLPModel',
    # layers=0: the ViT's patch embedding, [CLS] and positions only
    image_encoder=dict(
        type='ViTPatchEncoder',
        vision_cfg=dict(image_size={{_base_.image_size}}, patch_size=8, width=width, layers=0,
                        head_width=32)),
    # num_layers=0: BERT's embeddings only
    text_encoder=dict(
        type='BertTextEncoder', max_length=24, num_layers=0,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=1, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='SingleStreamFusion', width=width, depth=4, num_heads=4),
    objectives=dict(
        itm=dict(type='ImageTextMatchingTask', hard_negatives=False),
        mlm=dict(type='MaskedLanguageTask', mask_prob=0.15)),
    # ITM scores of the crop with each class prompt (one template: 12 fusions per crop)
    zero_shot=dict(classes={{_base_.classes}}, templates=['a {}']))

# tools/test.py: ITM accuracy (no joint space, so no embedding retrieval) on the 200 val scenes
test_dataloader = {{_base_.retrieval_dataloader}}
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
