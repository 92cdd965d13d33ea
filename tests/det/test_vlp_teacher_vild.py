"""A non-CLIP teacher distilled into ViLD: a checkpoint of the ALBEF recipe
(configs/pretrain/albef_shapes_tiny.py: ResNet-18 grid tower, BERT, fusion, momentum copy)
loaded by VLKDTeacher gives configs/vild/vild_r18_fpn_shapes.py its class vocabulary and its
region cache, and the student trains on both.

The expected values are computed here through the ALBEF model itself (its data preprocessor
and joint-space encoders), not through the teacher's code paths."""
import json
from pathlib import Path

import mmcv
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torchvision.ops import roi_align

from vlkd.det.region_cache import RegionEmbeddingCache
from vlkd.registry import MODELS
from vlkd.teachers.templates import fill_template, resolve_templates

RECIPE = Path(__file__).resolve().parents[2] / 'configs' / 'pretrain' / 'albef_shapes_tiny.py'


def _albef_checkpoint(path: Path) -> torch.nn.Module:
    """The ALBEF recipe's model with fixed random weights, saved as tools/train.py saves it
    (weights + config text)."""
    model_cfg = Config.fromfile(RECIPE).model.to_dict()
    init_default_scope('vlkd')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    cfg = Config(dict(model=model_cfg, default_scope='vlkd'), format_python_code=False)
    torch.save(dict(meta=dict(cfg=cfg.pretty_text), state_dict=model.state_dict()), path)
    return model.eval()


def _embed_pixels(model, crops: torch.Tensor) -> torch.Tensor:
    """Normalised joint-space embeddings of float RGB crops (N, 3, S, S) in 0..255."""
    data = model.data_preprocessor(dict(inputs=list(crops.flip(1))), False)  # BGR input
    return F.normalize(model.encode_image(data['inputs']), dim=-1)


@pytest.mark.slow
def test_albef_teacher_gives_vild_its_vocabulary_and_region_targets(
        tmp_path, vild_config, vild_text_checkpoint, shapes_root):
    albef = _albef_checkpoint(tmp_path / 'albef.pth')
    teacher = dict(type='VLKDTeacher', checkpoint=str(tmp_path / 'albef.pth'))
    proposal_checkpoint, _ = vild_text_checkpoint
    cache_dir = tmp_path / 'region_cache'

    cfg = vild_config('vild_r18_fpn_shapes.py')
    cfg.model.roi_head.bbox_head.vocabulary = dict(teacher=teacher, templates='shapes')
    cfg.model.roi_head.region_distillation.cache_dir = str(cache_dir)
    cfg.custom_hooks = [dict(cfg.custom_hooks[0], cache_dir=str(cache_dir), teacher=teacher,
                             num_proposals=4, scales=(1.0, 1.5),
                             proposal_detector=dict(checkpoint=str(proposal_checkpoint)))]
    cfg.work_dir = str(tmp_path / 'vild')
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None

    runner = Runner.from_cfg(cfg)
    head = runner.model.roi_head.bbox_head
    # the vocabulary: ALBEF's prompt-ensembled text embeddings (128-d joint space)
    templates = resolve_templates('shapes')
    with torch.no_grad():
        expected = torch.stack([
            F.normalize(F.normalize(albef.encode_text(
                [fill_template(t, name) for t in templates]), dim=-1).mean(0), dim=0)
            for name in head.train_classes])
    assert head.embed_dim == 128
    torch.testing.assert_close(head.train_embeddings, expected, atol=1e-5, rtol=1e-4)

    runner.train()
    losses = runner.message_hub.get_scalar('train/loss_region_distill').data[0]
    assert len(losses) == 2 and all(0.0 < v < float('inf') for v in losses)

    # the cache: ALBEF's embeddings of the proposal crops, 1x and 1.5x summed
    coco = json.loads((shapes_root / 'annotations' / 'instances_train.json').read_text())
    cache = RegionEmbeddingCache(cache_dir)
    assert cache.key['teacher_fingerprint'] == head.vocabulary.fingerprint
    image_info = coco['images'][0]
    boxes, embeddings = cache.get(image_info['id'])
    assert boxes.shape == (4, 4) and embeddings.shape == (4, 128)
    rgb = mmcv.imread(str(shapes_root / 'images' / 'train' / image_info['file_name']),
                      channel_order='rgb')
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    centres, sizes = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    summed = torch.zeros(4, 128)
    with torch.no_grad():
        for scale in (1.0, 1.5):
            scaled = torch.cat([centres - sizes * scale / 2, centres + sizes * scale / 2], 1)
            crops = roi_align(image, [scaled], output_size=32, spatial_scale=1.0,
                              sampling_ratio=-1, aligned=True)
            summed += _embed_pixels(albef, crops)
    torch.testing.assert_close(embeddings, F.normalize(summed, dim=-1), atol=2e-3, rtol=0)
