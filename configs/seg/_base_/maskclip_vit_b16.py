# MaskCLIP (Zhou et al., 2022): OpenAI's CLIP ViT-B/16 segments by the cosine similarity of
# its dense embeddings (last block's value path) to the class names' text embeddings, with
# prompt denoising and key smoothing; no training. The whole (resized) image goes through
# the tower at once, its positional embeddings resized to the patch grid.
#   python tools/zoo.py download clip-vit-b-16-openai --dir checkpoints/clip-vit-b-16-openai
teacher = dict(type='OpenAICLIPTeacher', archive='checkpoints/clip-vit-b-16-openai/ViT-B-16.pt',
               model_name='ViT-B-16-quickgelu', templates='photo')
model = dict(
    type='TeacherZeroShotSegmentor',
    teacher=teacher,
    prompt_denoising=0.5,
    key_smoothing=1.0,
    dense=dict(type='EncodeDense'),
    data_preprocessor=dict(type='mmseg.SegDataPreProcessor', bgr_to_rgb=True, pad_val=0,
                           seg_pad_val=255))
