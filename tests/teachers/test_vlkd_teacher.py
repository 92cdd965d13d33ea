"""VLKDTeacher: train the real pretraining config for 2 iterations with mmengine's Runner,
load the checkpoint as a teacher, and get the in-memory model's embeddings back."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from vlkd.teachers import VLKDTeacher, build_teacher
from vlkd.teachers.templates import SHAPES_TEMPLATES

CONFIG = Path(__file__).resolve().parents[2] / 'configs/pretrain/clip_shapes_tiny.py'


@pytest.fixture(scope='module')
def trained(shapes_root, tmp_path_factory):
    """(work_dir, runner) of 2 training iterations of configs/pretrain/clip_shapes_tiny.py
    (its model, batch norms included) on tiny data: batches of 4, no worker processes."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = str(tmp_path_factory.mktemp('work_dir'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = str(shapes_root)
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    return Path(cfg.work_dir), runner


def test_checkpoint_gives_the_in_memory_embeddings(trained):
    work_dir, runner = trained
    model = runner.model.eval()
    teacher = VLKDTeacher(str(work_dir))  # a work_dir: its last checkpoint
    assert teacher.checkpoint_path.endswith('iter_2.pth')
    texts = ['a red star and a blue circle', 'a heart']
    with torch.no_grad():
        torch.testing.assert_close(teacher.encode_text(texts), model.encode_text(texts),
                                   rtol=0, atol=1e-6)
        # the same pixels through the training path: BGR uint8 -> data preprocessor
        size = teacher.image_size
        rgb = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
        data = model.data_preprocessor(dict(inputs=list(rgb.flip(1))), False)
        expected = model.encode_image(data['inputs'])
    torch.testing.assert_close(teacher.encode_image(rgb.float()), expected, rtol=0, atol=1e-6)
    # trained weights, not a fresh init; zero-shot templates of the training config
    assert not torch.equal(teacher.model.logit_scale, torch.tensor(1 / 0.07).log())
    assert teacher.templates == SHAPES_TEMPLATES


def test_build_from_config_and_fingerprint(trained):
    work_dir, _ = trained
    teacher = build_teacher(dict(type='VLKDTeacher', checkpoint=str(work_dir / 'iter_2.pth'),
                                 templates='photo'))
    assert teacher.fingerprint == VLKDTeacher(str(work_dir)).fingerprint
    assert teacher.templates[0] == 'a photo of a {}.'


def test_missing_and_foreign_files_are_named(tmp_path):
    missing = tmp_path / 'nothing.pth'
    with pytest.raises(FileNotFoundError, match=f'{missing}.*Pretrain a teacher first'):
        VLKDTeacher(str(missing))
    with pytest.raises(FileNotFoundError, match='without a last_checkpoint'):
        VLKDTeacher(str(tmp_path))
    foreign = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}}, foreign)
    with pytest.raises(ValueError, match=f'{foreign} is not a vlkd checkpoint'):
        VLKDTeacher(str(foreign))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x00' * 10)
    with pytest.raises(ValueError, match=f'Cannot read {garbage}'):
        VLKDTeacher(str(garbage))


def test_builds_inside_another_scope(trained):
    """Students build their teacher while mmdet / mmseg builds the student model."""
    work_dir, _ = trained
    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher = build_teacher(dict(type='VLKDTeacher', checkpoint=str(work_dir)))
        direct = VLKDTeacher(str(work_dir))
    assert teacher.fingerprint == direct.fingerprint
