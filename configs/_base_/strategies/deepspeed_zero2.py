# DeepSpeed ZeRO stage 2 through mmengine's FlexibleRunner: optimizer states and gradients are
# split across the GPUs, parameters stay whole. Needs the deepspeed package, which vlkd does
# not install (pip install deepspeed; CUDA GPUs). Add to a recipe's _base_ together with
#   optim_wrapper = dict(type='DeepSpeedOptimWrapper')
# in the recipe variant (it keeps the recipe's optimizer and paramwise_cfg); launch with
# tools/dist_train.sh or tools/slurm_train.sh. mmengine sets train_micro_batch_size_per_gpu
# from train_dataloader.batch_size. Mixed precision: bf16=dict(enabled=True) (or fp16) here,
# not --amp.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        reduce_scatter=True,
        allgather_bucket_size=50_000_000,
        reduce_bucket_size=50_000_000,
        overlap_comm=True,
        contiguous_gradients=True),
    gradient_clipping=None)
