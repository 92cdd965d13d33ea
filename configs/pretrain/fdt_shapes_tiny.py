# FDT on vlkd-shapes: contrastive pretraining through finite discrete tokens.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/fdt_shapes_tiny.py
#
# A ViT (32 px, 8 px patches) and a BERT-style text encoder give patch and word features.
# 128 shared learnable tokens form the joint space: each token's relevance to an image is
# its best-matching patch (to a caption, its best word); a softmax over the tokens turns the
# relevances into weights and the representation is the weighted sum of the tokens. InfoNCE
# aligns image and caption representations.
# FDT's sparsemax (normalization='sparsemax') gives exact zeros; from scratch here its
# supports shrank to single tokens, whose sparsemax gradient is zero, and the loss never
# left log(batch) in 400 iterations (measured). The softmax keeps every token's gradient.
# The FDT space teaches a ViLD student: dict(type='VLKDTeacher',
# checkpoint='work_dirs/fdt_shapes_tiny').
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 200
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(
        type='ViTPatchEncoder',
        vision_cfg=dict(image_size={{_base_.image_size}}, patch_size=8, width=width, layers=4,
                        head_width=32)),
    text_encoder=dict(
        type='BertTextEncoder', max_length=24,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    objectives=dict(
        fdt=dict(type='FDTContrastTask', num_tokens=128, token_dim=128,
                 normalization='softmax',
                 # crops of one class share near-identical captions: smooth the targets
                 itc=dict(label_smoothing=0.1))),
    zero_shot=dict(classes={{_base_.classes}}, templates='shapes'))

# tools/test.py: retrieval in the FDT space on the 200 val scenes
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
