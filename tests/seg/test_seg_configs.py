"""The vlkd-shapes segmentation configs train a few iterations and evaluate on tiny data,
through mmengine's Runner as tools/train.py and tools/test.py run them; the self-training
config after tools/relabel_seg.py has relabelled the train set with a combined student."""
import json
import runpy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import vlkd  # noqa: F401
from vlkd.datasets.shapes import SHAPES_CLASSES, SHAPES_NOVEL_CLASSES
from vlkd.registry import MODELS
from vlkd.teachers import VLKDTeacher, VLPCheckpointTeacher

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs' / 'seg'
SELF_TRAINING = 'deeplabv3plus_r18_self_training_shapes.py'  # needs relabelled masks
STUDENTS = sorted(p.name for p in CONFIG_DIR.glob('*_shapes.py')
                  if not p.name.startswith('teacher_') and p.name != SELF_TRAINING)
TEACHERS = sorted(p.name for p in CONFIG_DIR.glob('teacher_*_shapes.py'))
METRIC_KEYS = {'aAcc', 'mIoU', 'mAcc', 'mIoU_seen', 'mIoU_unseen', 'hIoU'}


def shrink(cfg: Config, tmp_path) -> Config:
    """Two training iterations of batch 2; the dense cache under tmp_path."""
    if cfg.get('train_cfg'):
        cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 2
        cfg.train_dataloader.batch_size = 2
        cfg.param_scheduler = []
    if cfg.model.get('dense_cache'):
        cfg.model.dense_cache = str(tmp_path / 'dense_cache')
    cfg.default_hooks.checkpoint.interval = 2
    return cfg


# configs/pretrain/unicl_shapes_tiny.py at toy width: a torchvision ResNet-18 grid tower, a
# one-layer BERT, image-text-label contrast in a 16-d space
TINY_UNICL = dict(
    type='VLPModel',
    image_encoder=dict(type='CNNGridEncoder', backbone='resnet18', out_dim=32, image_size=32),
    text_encoder=dict(type='BertTextEncoder', max_length=16,
                      bert_cfg=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64)),
    objectives=dict(itc=dict(type='ImageTextLabelContrastTask', embed_dim=16, text_pool='mean')),
    zero_shot=dict(classes=list(SHAPES_CLASSES), templates='shapes'))


def test_class_lists_match_the_generator():
    cfg = Config.fromfile(CONFIG_DIR / '_base_/shapes_segmentation.py')
    assert cfg.classes == ['background'] + list(SHAPES_CLASSES)
    assert cfg.unseen_classes == list(SHAPES_NOVEL_CLASSES)


@pytest.mark.slow
@pytest.mark.parametrize('name', STUDENTS)
def test_student_config_trains_and_tests(name, relocate_config, tmp_path):
    cfg = shrink(relocate_config(Config.fromfile(CONFIG_DIR / name)), tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert METRIC_KEYS <= set(metrics)
    assert (Path(cfg.work_dir) / 'iter_2.pth').is_file()
    if cfg.model.get('dense_cache'):
        assert (tmp_path / 'dense_cache' / 'meta.json').is_file()


@pytest.mark.slow
@pytest.mark.parametrize('name', TEACHERS)
def test_teacher_config_tests(name, relocate_config, tmp_path):
    """tools/test.py CONFIG, without a checkpoint: the teacher loads its own weights."""
    config = tmp_path / name
    relocate_config(Config.fromfile(CONFIG_DIR / name)).dump(config)
    test_tool = runpy.run_path(str(ROOT / 'tools' / 'test.py'))['main']
    metrics = test_tool([str(config), '--work-dir', str(tmp_path / 'test')])
    assert METRIC_KEYS <= set(metrics)


@pytest.mark.slow
def test_self_training_round(relocate_config, shapes_root, tmp_path):
    """The commands of the self-training config's header: train the combined student,
    relabel the train set with it, train the self-training config from its weights on the
    new masks, test."""
    first = shrink(relocate_config(Config.fromfile(
        CONFIG_DIR / 'deeplabv3plus_r18_combined_shapes.py')), tmp_path)
    first.work_dir = str(tmp_path / 'combined')
    Runner.from_cfg(first).train()
    checkpoint = tmp_path / 'combined' / 'iter_2.pth'
    config = tmp_path / 'combined.py'
    first.dump(config)
    masks = tmp_path / 'masks'
    relabel_seg = runpy.run_path(str(ROOT / 'tools' / 'relabel_seg.py'))['main']
    relabel_seg([str(config), str(checkpoint), '--out-dir', str(masks), '--score-thr', '0'])
    train_masks = sorted(p.name for p in (shapes_root / 'semantic' / 'train').glob('*.png'))
    assert sorted(p.name for p in masks.glob('*.png')) == train_masks

    cfg = shrink(relocate_config(Config.fromfile(CONFIG_DIR / SELF_TRAINING)), tmp_path)
    assert cfg.train_dataloader.dataset.ignore_classes == []
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = str(masks)
    cfg.load_from = str(checkpoint)
    cfg.work_dir = str(tmp_path / 'self_training')
    runner = Runner.from_cfg(cfg)
    runner.train()
    dataset = runner.train_dataloader.dataset
    assert {Path(dataset.get_data_info(i)['seg_map_path']).parent
            for i in range(len(dataset))} == {masks}
    assert METRIC_KEYS <= set(runner.test())
    assert (tmp_path / 'self_training' / 'iter_2.pth').is_file()


@pytest.mark.slow
def test_combined_student_of_a_vlkd_unicl_teacher(relocate_config, tmp_path):
    """The UniCL config with a vlkd VLP checkpoint as the teacher (random weights, saved as
    tools/train.py saves them): class names, pseudo labels and dense maps come from it."""
    init_default_scope('vlkd')
    torch.manual_seed(0)
    checkpoint = tmp_path / 'unicl.pth'
    torch.save(dict(meta=dict(cfg=Config(dict(model=TINY_UNICL, default_scope='vlkd'))
                              .pretty_text),
                    state_dict=MODELS.build(TINY_UNICL).state_dict()), checkpoint)
    teacher = dict(type='VLKDTeacher', checkpoint=str(checkpoint))
    cfg = shrink(relocate_config(Config.fromfile(
        CONFIG_DIR / 'deeplabv3plus_r18_combined_unicl_shapes.py'), teacher=teacher), tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert isinstance(runner.model.teacher(torch.device('cpu')), VLPCheckpointTeacher)
    assert METRIC_KEYS <= set(runner.test())
    meta = json.loads((tmp_path / 'dense_cache' / 'meta.json').read_text())
    assert meta['key']['teacher_fingerprint'] == VLKDTeacher(str(checkpoint)).fingerprint
    head = runner.model.decode_head
    assert head.train_embeddings.shape[-1] == 16  # the UniCL joint space
