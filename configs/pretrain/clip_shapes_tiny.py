# A tiny CLIP teacher pretrained with image-text contrast (ITC) on vlkd-shapes captions.
#   python tools/make_shapes.py --out data/shapes
#   python tools/train.py configs/pretrain/clip_shapes_tiny.py
# Another data location: --cfg-options data_root=DIR train_dataloader.dataset.data_root=DIR
#   val_dataloader.dataset.data_root=DIR test_dataloader.dataset.data_root=DIR
# The teacher sees all 12 classes (it plays CLIP); val reports zero-shot top-1 accuracy on
# val object crops over all, base and novel classes.
#
# Image tower: open_clip's CLIP ResNet (ModifiedResNet: conv stem, bottleneck stages,
# attention pooling) at 32 px. In the same CPU time (about 3 minutes, 2 cores) a ViT
# (64 px, 8 px patches, width 128, 4 layers; also with average pooling and sin-cos
# positions) reached only 15-20% zero-shot crop accuracy: too little data and compute for a
# ViT without convolutional priors. The ResNet at 32 px learns the shapes several times
# faster (at 64 px its features see too little of an object per location).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/shapes_image_text.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

max_iters = 700

model = dict(
    type='CLIPPretrainer',
    # an open_clip CLIP: ResNet image tower (one bottleneck per stage, width 32) on 32 px;
    # 4-layer text transformer over the real CLIP BPE vocabulary, context length 32
    model_cfg=dict(
        embed_dim=128,
        vision_cfg=dict(image_size={{_base_.image_size}}, layers=[1, 1, 1, 1], width=32,
                        head_width=32),
        text_cfg=dict(context_length=32, vocab_size=49408, width=128, heads=4, layers=4)),
    # label smoothing softens the in-batch false negatives: crops of one class share
    # near-identical captions ("a star", "a picture of a star")
    loss=dict(type='ImageTextContrastiveLoss', max_scale=100.0, label_smoothing=0.1),
    zero_shot=dict(classes={{_base_.classes}}, templates='shapes'))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # one parameter group per paramwise_cfg setting (mmengine's default: one per parameter)
    constructor='GroupedOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1),
    # no decay on gains, biases, token and position embeddings, temperature
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'embedding': dict(decay_mult=0.0),
                                    'logit_scale': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=1e-5),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False,
                    max_keep_ckpts=1))
