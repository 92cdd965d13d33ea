"""The segmentation benchmark configs (VOC 2012 and COCO-Stuff zero-shot, ADE20K-150 and
Pascal-Context-59 open-vocabulary evaluation, MaskCLIP baselines) on tiny files in the
official formats: class lists against vlkd's, datasets and models built, and the VOC
MaskCLIP+ recipe trained for two iterations (a tiny backbone, the tiny CLIP teacher) and
evaluated."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import vlkd  # noqa: F401
from vlkd.datasets.seg_ade20k import ADE20K_CLASSES
from vlkd.datasets.seg_coco_stuff import COCO_STUFF_CLASSES, COCO_STUFF_UNSEEN_CLASSES
from vlkd.datasets.seg_pascal_context import PASCAL_CONTEXT59_CLASSES
from vlkd.datasets.seg_voc import VOC_CLASSES, VOC_UNSEEN_CLASSES

from seg_benchmark_data import benchmark_configs, write_all

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'seg'
BENCHMARKS = benchmark_configs(CONFIG_DIR)
TEACHER_TYPES = ('OpenAICLIPTeacher', 'OpenCLIPTeacher', 'VLKDTeacher')


@pytest.fixture(scope='module')
def benchmark_roots(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp('seg_benchmarks'))


def relocate(node, roots, teacher):
    """Data paths to the tiny trees, every teacher to the tiny CLIP."""
    if isinstance(node, dict):
        if node.get('type') in TEACHER_TYPES:
            return dict(teacher)
        return {k: relocate(v, roots, teacher) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(relocate(v, roots, teacher) for v in node)
    if isinstance(node, str):
        for prefix, root in roots.items():
            if node.startswith(prefix):
                return root.rstrip('/') + '/' + node[len(prefix):]
    return node


def load(name, roots, teacher, tmp_path) -> Config:
    data = relocate(Config.fromfile(CONFIG_DIR / name).to_dict(), roots, teacher)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key in data:
            data[key].update(num_workers=0, persistent_workers=False)
    data['work_dir'] = str(tmp_path / 'work_dir')
    return Config(data)


def test_benchmark_class_lists_are_vlkds():
    voc = Config.fromfile(CONFIG_DIR / '_base_/voc12_zero_shot.py')
    assert voc.classes == list(VOC_CLASSES) and voc.unseen_classes == list(VOC_UNSEEN_CLASSES)
    coco = Config.fromfile(CONFIG_DIR / '_base_/coco_stuff_classes.py')
    assert coco.coco_stuff_classes == list(COCO_STUFF_CLASSES)
    assert coco.coco_stuff_unseen_classes == list(COCO_STUFF_UNSEEN_CLASSES)
    ade = Config.fromfile(CONFIG_DIR / '_base_/ade20k_open_vocab.py')
    assert ade.classes == list(ADE20K_CLASSES)
    context = Config.fromfile(CONFIG_DIR / '_base_/pascal_context59_open_vocab.py')
    assert context.classes == list(PASCAL_CONTEXT59_CLASSES)
    student = Config.fromfile(CONFIG_DIR / 'deeplabv3plus_r101_maskclip_plus_coco_stuff_zero_shot.py')
    assert student.model.pseudo_label_classes == list(COCO_STUFF_UNSEEN_CLASSES)
    assert student.train_dataloader.dataset.ignore_classes == list(COCO_STUFF_UNSEEN_CLASSES)


@pytest.mark.slow
@pytest.mark.parametrize('name', BENCHMARKS)
def test_benchmark_config_builds(name, benchmark_roots, tiny_teacher_cfg, tmp_path):
    cfg = load(name, benchmark_roots, tiny_teacher_cfg, tmp_path)
    runner = Runner.from_cfg(cfg)
    assert sum(p.numel() for p in runner.model.parameters()) > 0
    for split in ('train_dataloader', 'val_dataloader'):
        if split in cfg:
            loader = runner.build_dataloader(cfg[split])
            batch = next(iter(loader))
            assert len(batch['inputs']) > 0 and 'gt_sem_seg' in batch['data_samples'][0]


@pytest.mark.slow
def test_voc_maskclip_plus_trains_and_evaluates(benchmark_roots, tiny_teacher_cfg, tmp_path):
    """The recipe end to end at toy size: ResNet-18/8 backbone, 64 px crops, 2 iterations;
    the pseudo labels use the tiny CLIP's MaskCLIP map with denoising and key smoothing."""
    cfg = load('deeplabv3plus_r101_maskclip_plus_voc12_zero_shot.py', benchmark_roots,
               tiny_teacher_cfg, tmp_path)
    norm = dict(type='BN', requires_grad=True)
    cfg.model.backbone = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                              out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                              strides=(1, 2, 1, 1), norm_cfg=norm, contract_dilation=True)
    cfg.model.decode_head.decoder.update(in_channels=64, channels=16, c1_in_channels=8,
                                         c1_channels=8, norm_cfg=norm)
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(48, 48))
    for step in cfg.train_dataloader.dataset.pipeline:
        if step['type'].endswith('RandomResize'):
            step['scale'] = (128, 64)
        if step['type'].endswith('RandomCrop'):
            step['crop_size'] = (64, 64)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'].endswith('Resize'):
            step['scale'] = (128, 64)
    cfg.val_dataloader = cfg.test_dataloader
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert {'mIoU', 'mIoU_seen', 'mIoU_unseen', 'hIoU'} <= set(metrics)
