"""Fixtures shared by the whole suite: tiny vlkd-shapes data and a tiny CLIP teacher.

The suite tests on the CPU, also on a machine with a GPU: mmengine's runners take the GPU
whenever torch sees one, and tests compare what they trained with references built on the
CPU. GPUs are hidden here, before torch starts CUDA, unless ``VLKD_TEST_GPU=1``. The GPU
path is measured by ``python tools/benchmark.py --device cuda`` (docs/benchmarks.md).
"""
import os

if os.environ.get('VLKD_TEST_GPU') != '1':
    os.environ['CUDA_VISIBLE_DEVICES'] = ''

import pytest  # noqa: E402
import torch  # noqa: E402

import vlkd  # noqa: E402,F401  (installs the mmcv compatibility layer before mmdet/mmseg)
from vlkd.datasets.shapes import generate_shapes  # noqa: E402

# A tiny open_clip CLIP (32 px input, one block per tower) that builds in well under a second.
TINY_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=1, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
# Its ResNet sibling, for configs whose detector starts from the teacher's CLIP ResNet trunk
# (vlkd.CLIPResNetBackbone): stage widths 128-1024 as the quickstart teacher's.
TINY_RESNET_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=32, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """vlkd-shapes with 6 train, 4 val and 2 test images of 64 px."""
    return generate_shapes(tmp_path_factory.mktemp('data') / 'shapes', seed=1, num_train=6,
                           num_val=4, num_test=2, image_size=64, max_objects=3)


@pytest.fixture(scope='session')
def shapes_regions_root(shapes_root):
    """``shapes_root`` with region files of its ground-truth boxes for every split, where
    ``tools/extract_regions.py --gt-boxes`` writes them (regions/gt_boxes/SPLIT/): random
    256-d features and 13-column class distributions, as the ViLD-text detector gives."""
    import json

    from vlkd.vlp.encoders import RegionSet, save_region_file
    g = torch.Generator().manual_seed(0)
    for split in ('train', 'val', 'test'):
        coco = json.loads((shapes_root / 'annotations' / f'instances_{split}.json').read_text())
        for img in coco['images']:
            boxes = torch.tensor([[x, y, x + w, y + h] for a in coco['annotations']
                                  if a['image_id'] == img['id'] for x, y, w, h in [a['bbox']]],
                                 dtype=torch.float32)
            save_region_file(shapes_root / 'regions' / 'gt_boxes' / split / f"{img['id']}.npz",
                             RegionSet(boxes, torch.randn(len(boxes), 256, generator=g),
                                       torch.randn(len(boxes), 13, generator=g).softmax(-1),
                                       (img['height'], img['width'])))
    return shapes_root


@pytest.fixture(scope='session')
def shapes_video_clips_root(tmp_path_factory):
    """vlkd-shapes-video with 4 train, 2 val, 2 test clips of 8 frames of 32 px."""
    from vlkd.datasets.shapes_video import generate_shapes_video
    return generate_shapes_video(tmp_path_factory.mktemp('data') / 'shapes_video', seed=0,
                                 num_train=4, num_val=2, num_test=2, image_size=32,
                                 num_frames=8, max_objects=2)


@pytest.fixture(scope='session')
def ov_coco_root(tmp_path_factory):
    """COCO 2017 in its official layout (6 train, 4 val tiny images) with the OV-COCO split
    files of tools/make_ov_split.py (see tests/ov_detection_data.py)."""
    from ov_detection_data import write_coco_2017, write_split_files
    root = write_coco_2017(tmp_path_factory.mktemp('data') / 'coco')
    write_split_files(coco_root=root)
    return root


@pytest.fixture(scope='session')
def ov_lvis_root(tmp_path_factory):
    """LVIS v1 in its official layout (5 train, 3 val tiny images, 1203 categories) with the
    OV-LVIS train file of tools/make_ov_split.py (see tests/ov_detection_data.py)."""
    from ov_detection_data import write_lvis_v1, write_split_files
    root = write_lvis_v1(tmp_path_factory.mktemp('data') / 'lvis')
    write_split_files(lvis_root=root)
    return root


def _saved_open_clip_teacher(model_cfg, path):
    from vlkd.vlp.clip_model import build_open_clip_model
    torch.manual_seed(0)
    torch.save(build_open_clip_model(model_cfg=model_cfg).state_dict(), path)
    return dict(type='OpenCLIPTeacher', model_cfg=model_cfg, pretrained=str(path),
                templates='shapes')


@pytest.fixture(scope='session')
def tiny_teacher_cfg(tmp_path_factory):
    """Config dict of an OpenCLIPTeacher with fixed random weights saved to a local file."""
    return _saved_open_clip_teacher(TINY_CLIP_CFG,
                                    tmp_path_factory.mktemp('teacher') / 'tiny_clip.pt')


@pytest.fixture(scope='session')
def tiny_resnet_teacher_cfg(tmp_path_factory):
    """As ``tiny_teacher_cfg`` with a CLIP ResNet image tower."""
    return _saved_open_clip_teacher(TINY_RESNET_CLIP_CFG,
                                    tmp_path_factory.mktemp('teacher') / 'tiny_resnet_clip.pt')


def _mmengine_managers() -> list:
    """mmengine's globally named singletons (loggers, visualizers, message hubs, scopes):
    every class under ManagerMixin, each with its own ``_instance_dict``."""
    from mmengine.utils import ManagerMixin
    classes, stack = [], [ManagerMixin]
    while stack:
        for sub in stack.pop().__subclasses__():
            classes.append(sub)
            stack.append(sub)
    return classes


@pytest.fixture(autouse=True)
def _one_thread_and_private_home(monkeypatch, tmp_path):
    """Keep tests small on shared CPUs, their caches out of the user's VLKD_HOME, and what a
    test leaves in mmengine's globals out of the next test: the default scope, and the named
    singletons its runners made. A runner's visualizer is named by the second it started, so
    a runner of the next test in the same second would otherwise get this test's visualizer,
    which writes into this test's (removed) tmp_path."""
    import logging

    from mmengine.registry import DefaultScope
    monkeypatch.setenv('VLKD_HOME', str(tmp_path / 'vlkd_home'))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    before = {cls: set(cls._instance_dict) for cls in _mmengine_managers()}
    with DefaultScope.overwrite_default_scope('vlkd'):
        yield
    torch.set_num_threads(threads)
    for cls in _mmengine_managers():
        for name in set(cls._instance_dict) - before.get(cls, set()):
            instance = cls._instance_dict.pop(name)
            if isinstance(instance, logging.Logger):
                for handler in list(instance.handlers):
                    instance.removeHandler(handler)
                    handler.close()


def _relocate(node, roots: dict, teacher: dict):
    """Point every data path at its test root (``roots``: prefix -> directory) and every
    teacher at ``teacher``."""
    if isinstance(node, dict):
        if node.get('type') in ('VLKDTeacher', 'OpenCLIPTeacher', 'vlkd.VLKDTeacher'):
            return dict(teacher)
        return type(node)({k: _relocate(v, roots, teacher) for k, v in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(_relocate(v, roots, teacher) for v in node)
    if isinstance(node, str):
        for prefix, root in roots.items():
            if node.startswith(prefix):
                return root.rstrip('/') + '/' + node[len(prefix):]
    return node


@pytest.fixture
def relocate_config(shapes_regions_root, shapes_video_clips_root, ov_coco_root, ov_lvis_root,
                    tiny_teacher_cfg, tiny_resnet_teacher_cfg, tmp_path):
    """Adapt a shipped config to the tiny test data (data/shapes/ with its region files,
    data/shapes_video/, data/coco/, data/lvis/): data paths, teacher, work_dir, workers.

    ``relocate_config(cfg, teacher=None)`` returns a new Config; ``teacher`` replaces every
    teacher dict (default: the tiny random OpenCLIP teacher, its ResNet sibling for configs
    whose backbone is the teacher's CLIP ResNet trunk).
    """
    from mmengine.config import Config

    def relocate(cfg: Config, teacher: dict = None) -> Config:
        roots = {'data/shapes/': str(shapes_regions_root),
                 'data/shapes_video/': str(shapes_video_clips_root),
                 'data/coco/': str(ov_coco_root), 'data/lvis/': str(ov_lvis_root)}
        if teacher is None:
            resnet_trunk = 'CLIPResNetBackbone' in str(cfg.get('model', {}).get('backbone'))
            teacher = tiny_resnet_teacher_cfg if resnet_trunk else tiny_teacher_cfg
        data = _relocate(cfg.to_dict(), roots, teacher)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if data.get(key) is not None:
                data[key].update(num_workers=0, persistent_workers=False)
        data['work_dir'] = str(tmp_path / 'work_dir')
        # unformatted config text (still valid Python): yapf takes seconds on class lists
        return Config(data, format_python_code=False)

    return relocate
