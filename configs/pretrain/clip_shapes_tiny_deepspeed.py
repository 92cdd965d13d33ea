# The tiny CLIP recipe (clip_shapes_tiny.py) trained with DeepSpeed ZeRO-2 (optimizer states
# and gradients sharded across the GPUs). Needs pip install deepspeed and CUDA GPUs:
#   tools/dist_train.sh configs/pretrain/clip_shapes_tiny_deepspeed.py 2
_base_ = ['./clip_shapes_tiny.py', '../_base_/strategies/deepspeed_zero2.py']
optim_wrapper = dict(type='DeepSpeedOptimWrapper')  # the recipe's AdamW and paramwise_cfg
