# Runtime of the detection configs: vlkd's defaults plus mmdet's visualization hook, which
# draws test predictions when tools/test.py is given --show-dir (it draws nothing otherwise),
# and vlkd's check that the data's class names, its annotation categories and the detector's
# class lists agree (a mismatch would shift labels silently).
_base_ = ['./default_runtime.py']
default_hooks = dict(visualization=dict(type='mmdet.DetVisualizationHook'),
                     class_check=dict(type='CheckClassNamesHook'))
visualizer = dict(type='mmdet.DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
