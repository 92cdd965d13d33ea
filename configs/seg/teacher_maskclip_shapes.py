# The teacher's zero-shot segmentation with MaskCLIP's dense embeddings (the CLIP ResNet's
# attention-pool value and output projections at every location of its last feature map),
# at twice the image size: an 8 x 8 map, as the sliding window of
# teacher_zero_shot_shapes.py. For comparison with that view (see README).
#   python tools/test.py configs/seg/teacher_maskclip_shapes.py
_base_ = ['./teacher_zero_shot_shapes.py']
model = dict(dense=dict(_delete_=True, type='EncodeDense', size=256))
