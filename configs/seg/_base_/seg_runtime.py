# Runtime of the segmentation configs: vlkd's defaults plus mmseg's visualization hook, which
# draws test predictions when tools/test.py is given --show-dir (it draws nothing otherwise).
_base_ = ['../../_base_/default_runtime.py']
default_hooks = dict(visualization=dict(type='mmseg.SegVisualizationHook'))
visualizer = dict(type='mmseg.SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
