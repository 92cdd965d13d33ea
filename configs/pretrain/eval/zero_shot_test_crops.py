# Zero-shot classification of the test split's object crops (held out from pretraining) by
# any pretraining recipe on pixels, chosen with the RECIPE environment variable (a file name
# in configs/pretrain/; default clip_shapes_tiny.py):
#   RECIPE=albef_shapes_tiny.py python tools/test.py \
#       configs/pretrain/eval/zero_shot_test_crops.py work_dirs/albef_shapes_tiny
# The recipe's model, its prompts and its validation pipeline and metric (top-1 over all,
# base and novel crops), on instances_test.json instead of instances_val.json. Recipes on
# regions (uniter, glip) and video (hero) read no crops: their own configs evaluate them.
_base_ = '../{{$RECIPE:clip_shapes_tiny.py}}'

test_dataloader = dict(
    _delete_=True,
    batch_size=128,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ShapesObjectCropDataset',
        data_root={{_base_.data_root}},
        ann_file='annotations/instances_test.json',
        data_prefix=dict(img='images/test/'),
        test_mode=True,
        pipeline={{_base_.val_pipeline}}))
test_evaluator = [{{_base_.val_evaluator}}]
