# ViLD on OV-COCO (1x): ViLD-text plus ViLD-image, an L1 loss pulling the student's region
# embeddings of proposals towards the teacher's image embeddings of the same crops (1x and
# 1.5x crops, summed), weight 0.5 as in ViLD. The proposals come from the ViLD-text run,
# whose RPN never saw a novel box but proposes novel objects too; they are embedded once and
# cached on disk (float16, about 3.5 GB for the 107k training images at 32 proposals each).
#   python tools/train.py configs/ov_coco/vild_text_r50_fpn_1x_ov_coco.py   # first
#   python tools/train.py configs/ov_coco/vild_r50_fpn_1x_ov_coco.py
_base_ = './vild_text_r50_fpn_1x_ov_coco.py'

# the ViLD-text run (a checkpoint file or its work_dir); its stored config rebuilds the model
proposal_detector = dict(checkpoint='work_dirs/vild_text_r50_fpn_1x_ov_coco')
region_cache_dir = 'work_dirs/region_cache/ov_coco_train_vild_text_r50_vit_b_32'

model = dict(
    roi_head=dict(region_distillation=dict(cache_dir=region_cache_dir, loss_weight=0.5)))

custom_hooks = [
    dict(type='BuildRegionCacheHook',
         cache_dir=region_cache_dir,
         proposal_detector=proposal_detector,
         teacher={{_base_.teacher}},
         num_proposals=32,
         scales=(1.0, 1.5)),
]
