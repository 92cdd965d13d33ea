# HERO-style video-text pretraining on vlkd-shapes-video: frame order and masked words.
#   python tools/make_shapes_video.py --out data/shapes_video
#   python tools/train.py configs/pretrain/hero_shapes_video_tiny.py
#
# Each clip: 8 frames (32 px) encoded one by one by a ResNet-18 (HERO reads per-frame CNN
# features); the frame features get temporal position embeddings (frame tokens). A 2-layer BERT-style encoder reads the
# motion caption ("a red star moves to the left and a blue circle falls"); a 3-layer
# single-stream transformer fuses caption and frame tokens.
# - FOM: 15% of a clip's frames (at least 2) are shuffled before the temporal positions;
#   each shuffled frame's original position is classified from its fused output.
# - MLM: 15% of the caption tokens masked, predicted from the clip and the rest.
# - video-text contrast (HERO's global video-subtitle matching as InfoNCE) between the mean
#   frame token and the mean caption token: the joint space for video <-> text retrieval.
# Motion words ("left", "rises", "spins") can only be predicted from the frame order, which
# is what FOM trains.
_base_ = ['../_base_/default_runtime.py']
custom_imports = dict(imports=['vlkd.vlp', 'vlkd.datasets'], allow_failed_imports=False)

data_root = 'data/shapes_video/'
frame_size = 32
num_frames = 8
max_iters = 100
width = 128

model = dict(
    type='VLPModel',
    image_encoder=dict(
        type='FrameSequenceEncoder', out_dim=width, max_frames=num_frames, min_frames=2,
        image_encoder=dict(type='CNNGridEncoder', backbone='resnet18', out_dim=width,
                           image_size=frame_size)),
    text_encoder=dict(
        type='BertTextEncoder', max_length=32,
        bert_cfg=dict(hidden_size=width, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=4 * width, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)),
    fusion=dict(type='SingleStreamFusion', width=width, depth=3, num_heads=4),
    objectives=dict(
        fom=dict(type='FrameOrderTask', shuffle_ratio=0.15),
        mlm=dict(type='MaskedLanguageTask', mask_prob=0.15),
        vtc=dict(type='ImageTextContrastTask', embed_dim=128, text_pool='mean')),
    data_preprocessor=dict(type='VideoDataPreprocessor'))

train_pipeline = [
    dict(type='LoadVideoFrames'),
    dict(type='ResizeFrames', scale=(frame_size, frame_size)),
    dict(type='PackVideoTextInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='vlkd.video_text_collate'),
    dataset=dict(
        type='ShapesVideoTextDataset',
        data_root=data_root,
        ann_file='annotations/videos_train.json',
        data_prefix=dict(frames='frames/train/'),
        num_frames=num_frames,
        frame_sampling='uniform',
        pipeline=train_pipeline))
# val / test: video <-> caption retrieval over the 100 val clips, each with its 3 captions
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='vlkd.video_text_collate'),
    dataset=dict(
        type='ShapesVideoTextDataset',
        data_root=data_root,
        ann_file='annotations/videos_val.json',
        data_prefix=dict(frames='frames/val/'),
        num_frames=num_frames,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ImageTextRetrievalMetric', ks=(1, 5, 10))]
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
