# Image <-> text retrieval (R@1/5/10 both directions) on the test split's 200 scenes (held
# out from pretraining), each with all its captions, in the joint space of any pretraining
# recipe on pixels, chosen with the RECIPE environment variable (a file name in
# configs/pretrain/; default clip_shapes_tiny.py):
#   RECIPE=clip_shapes_tiny.py python tools/test.py \
#       configs/pretrain/eval/retrieval_test_scenes.py work_dirs/clip_shapes_tiny
# The recipes with an ITM head also report ITM accuracy from their own test set, moved to the
# test split:
#   python tools/test.py configs/pretrain/albef_shapes_tiny.py work_dirs/albef_shapes_tiny \
#       --cfg-options test_dataloader.dataset.ann_file=annotations/captions_test.json \
#       test_dataloader.dataset.data_prefix.img=images/test/
_base_ = '../{{$RECIPE:clip_shapes_tiny.py}}'

test_dataloader = dict(
    _delete_=True,
    batch_size=64,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ImageTextDataset',
        data_root={{_base_.data_root}},
        ann_file='annotations/captions_test.json',
        data_prefix=dict(img='images/test/'),
        items='images',
        test_mode=True,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=({{_base_.image_size}}, {{_base_.image_size}}),
                 keep_ratio=False),
            dict(type='PackImageTextInputs'),
        ]))
test_evaluator = [dict(type='ImageTextRetrievalMetric', ks=(1, 5, 10))]
