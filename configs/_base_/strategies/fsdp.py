# Fully sharded data parallel (torch FSDP) through mmengine's FlexibleRunner: parameters,
# gradients and optimizer states are split across the processes; each transformer block of
# the towers is its own FSDP unit, gathered only while it runs. Add to a recipe's _base_ and
# launch as usual (tools/dist_train.sh CONFIG NUM_GPUS, or tools/slurm_train.sh).
# On CPUs (gloo, e.g. for tests) set strategy.model_wrapper.device_id='cpu'.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='VLKDFSDPStrategy',  # mmengine's FSDPStrategy, with --resume fixed for torch 2
    model_wrapper=dict(
        type='VLKDFullyShardedDataParallel',  # mmengine's, taking scalar parameters too
        sharding_strategy='FULL_SHARD',  # SHARD_GRAD_OP: keep parameters whole (ZeRO-2)
        use_orig_params=True,  # parameter names and groups as without FSDP (paramwise_cfg)
        auto_wrap_policy=dict(type='vlkd.transformer_block_wrap_policy')),
    # checkpoints hold the whole model, written by rank 0 (loadable without FSDP)
    state_dict_cfg='full')
