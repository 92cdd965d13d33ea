"""Every pretraining recipe of configs/pretrain: its own model classes built from the config,
trained for a few iterations with mmengine's Runner on the tiny shapes data (images, region
files, video clips), validated and tested with its evaluators; the recipes with a joint
image-text space then teach through VLKDTeacher with the trained model's embeddings."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from vlkd.teachers import VLKDTeacher

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'pretrain'
# recipes; their FSDP / DeepSpeed variants (a FlexibleRunner strategy on top of a recipe)
# are trained by tests/engine/test_fsdp_strategy.py
RECIPES = sorted(p for p in CONFIG_DIR.glob('*.py')
                 if not p.stem.endswith(('_fsdp', '_deepspeed')))
# every recipe the issue names, so that a removed config fails here
EXPECTED = {'clip', 'albef', 'vlmo', 'vilt', 'uniter', 'simvlm', 'fdt', 'flava', 'glip',
            'hero', 'unicl'}
# recipes whose joint space embeds pixels: they must teach
TEACHERS = {'clip', 'albef', 'vlmo', 'fdt', 'flava', 'unicl'}


def short(cfg: Config) -> int:
    """Shrink a recipe's schedule and batches in place; returns the iterations to run."""
    iters = 2
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'VLMoStageHook']
    for hook in hooks:  # every VLMo stage for one iteration
        hook['stages'] = [(i, stage) for i, (_, stage) in enumerate(hook['stages'])]
        iters = len(hook['stages'])
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader.batch_size = cfg.test_dataloader.batch_size = 8
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 1
    return iters


def test_every_recipe_is_there():
    assert {p.stem.split('_')[0] for p in RECIPES} == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize('path', RECIPES, ids=lambda p: p.stem)
def test_recipe_trains_evaluates_and_teaches(path, relocate_config):
    cfg = relocate_config(Config.fromfile(path))
    iters = short(cfg)
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()

    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == iters and all(math.isfinite(v) for v in losses)
    trained = runner.model.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    metrics = runner.test()
    assert metrics and all(math.isnan(v) or 0.0 <= v <= 100.0 for v in metrics.values()
                           if isinstance(v, float))
    name = path.stem.split('_')[0]
    if name not in TEACHERS:
        return
    teacher = VLKDTeacher(cfg.work_dir)
    assert teacher.checkpoint_path.endswith(f'iter_{iters}.pth')
    model = runner.model.eval()
    size = teacher.image_size
    rgb = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    texts = ['a red star and a blue circle', 'a heart']
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(rgb.flip(1))), False)  # BGR input
        image = model.encode_image(data['inputs'])
        text = model.encode_text(texts)
    torch.testing.assert_close(teacher.encode_image(rgb.float()), image, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(teacher.encode_text(texts), text, atol=1e-5, rtol=1e-4)
