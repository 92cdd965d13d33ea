# The teacher's own zero-shot segmentation of vlkd-shapes: the cosine similarity of its
# dense embeddings (a sliding window, see _base_/shapes_segmentation.py) to the class-name
# embeddings, upsampled; the baseline of the students and the source of their pseudo
# labels. Nothing is trained and the teacher loads its own weights (no checkpoint argument).
#   python tools/train.py configs/pretrain/clip_shapes_tiny.py
#   python tools/test.py configs/seg/teacher_zero_shot_shapes.py
_base_ = ['./_base_/shapes_segmentation.py', './_base_/seg_runtime.py']
custom_imports = dict(imports=['vlkd.seg', 'vlkd.datasets', 'vlkd.evaluation'],
                      allow_failed_imports=False)

teacher = dict(type='VLKDTeacher', checkpoint='work_dirs/clip_shapes_tiny')
model = dict(
    type='TeacherZeroShotSegmentor',
    teacher=teacher,
    classes={{_base_.classes}},
    synonyms={{_base_.background_synonyms}},
    dense={{_base_.dense_view}},
    data_preprocessor=dict(type='mmseg.SegDataPreProcessor', bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255))
