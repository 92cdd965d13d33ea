# Tip-Adapter-F on vlkd-shapes crops, base-to-novel: the Tip-Adapter cache (10 augmented
# epochs), then 20 epochs of fine-tuning the cache keys (AdamW lr 0.001, cosine; as in the
# paper).
#   python tools/train.py configs/prompt/tip_adapter_f_shapes.py
_base_ = ['./tip_adapter_shapes.py']

cache_epochs = 10
finetune_epochs = 20
model = dict(finetune=True)

train_cfg = dict(max_epochs=cache_epochs + finetune_epochs)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=0.001, eps=1e-4, weight_decay=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=cache_epochs,
                        end=cache_epochs + finetune_epochs)]
