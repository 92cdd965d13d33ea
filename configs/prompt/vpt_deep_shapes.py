# VPT-deep: new prompt tokens at the input of every ViT layer.
#   python tools/train.py configs/prompt/vpt_deep_shapes.py
_base_ = ['./vpt_shallow_shapes.py']

model = dict(deep=True)
