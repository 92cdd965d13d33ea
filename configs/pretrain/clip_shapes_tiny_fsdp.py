# The tiny CLIP recipe (clip_shapes_tiny.py) trained with FSDP: each process holds a shard of
# the parameters, gradients and AdamW states; every transformer block of the text tower is an
# FSDP unit (the ResNet image tower stays in the root unit).
#   tools/dist_train.sh configs/pretrain/clip_shapes_tiny_fsdp.py 2
# The same recipe as clip_shapes_tiny.py: with the same total batch it trains the same model.
_base_ = ['./clip_shapes_tiny.py', '../_base_/strategies/fsdp.py']
