# Runtime of the detection configs: vlkd's defaults plus mmdet's visualization hook, which
# draws test predictions when tools/test.py is given --show-dir (it draws nothing otherwise).
_base_ = ['./default_runtime.py']
default_hooks = dict(visualization=dict(type='mmdet.DetVisualizationHook'))
visualizer = dict(type='mmdet.DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
