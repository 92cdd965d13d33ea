# Tip-Adapter on vlkd-shapes crops, base-to-novel: training-free; "training" fills the cache
# with the mean embedding of 10 augmented views (epochs) of each training crop.
#   python tools/train.py configs/prompt/tip_adapter_shapes.py
# Zero-shot CLIP (the template classifier) is the same run with the cache switched off:
#   python tools/train.py configs/prompt/tip_adapter_shapes.py --cfg-options model.alpha=0
_base_ = ['./_base_/shapes_base_to_novel.py']

cache_epochs = 10
# logit_scale 100 as in Tip-Adapter's formula (100 f W^T + alpha A L), whatever the
# teacher's learned temperature
model = dict(type='TipAdapter', alpha=1.0, beta=5.5, cache_epochs=cache_epochs,
             logit_scale=100.0)

train_cfg = dict(max_epochs=cache_epochs)
# nothing is optimised; mmengine builds an optimizer for every training run
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.0))
