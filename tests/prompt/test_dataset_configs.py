"""The configs of the 11 ImageFolder datasets: a method config written on top of each, as
the README shows, builds its model, datasets and metric (as the Runner would) and runs a
training step and an evaluation on a small generated tree in the dataset's layout."""
from pathlib import Path

import mmcv
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator

from vlkd.datasets import base_novel_split
from vlkd.registry import DATASETS as DATASET_REGISTRY
from vlkd.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
DATASETS = sorted(p.stem for p in (ROOT / 'configs/prompt/_base_/datasets').glob('*.py'))
FOLDERS = ['n01_goldfish', 'sea_lion', 'Faces_easy', 'b747', 'apple_pie']


def test_the_usual_eleven():
    assert DATASETS == sorted(['imagenet', 'caltech101', 'oxford_pets', 'stanford_cars',
                               'flowers102', 'food101', 'fgvc_aircraft', 'sun397', 'dtd',
                               'eurosat', 'ucf101'])


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """5 classes x 2 images per split; the class-name file names two by their folder."""
    root = tmp_path_factory.mktemp('imagefolder')
    for split in ('train', 'val', 'test'):
        for k, folder in enumerate(FOLDERS):
            for i in range(2):
                path = root / split / folder / f'{i}.jpg'
                path.parent.mkdir(parents=True, exist_ok=True)
                mmcv.imwrite(np.full((30, 40, 3), 40 * k + i, np.uint8), str(path))
    (root / 'classnames.txt').write_text('n01_goldfish goldfish\nsea_lion\nFaces_easy face\n'
                                         'b747 Boeing 747\napple_pie\n')
    return root


def relocate(node, old: str, new: str, teacher: dict):
    """``node`` with data paths under ``new`` and the tiny teacher."""
    if isinstance(node, dict):
        if node.get('type') == 'OpenCLIPTeacher':
            return dict(teacher)
        if node.get('type') == 'ImageFolderDataset':  # small: skip mmengine's packing
            node = dict(node, serialize_data=False)
        return {k: relocate(v, old, new, teacher) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(relocate(v, old, new, teacher) for v in node)
    if isinstance(node, str) and node.startswith(old):
        return new + node[len(old):]
    return node


@pytest.mark.parametrize('dataset', DATASETS)
def test_method_on_dataset_layout(dataset, image_folder, teacher_cfg, tmp_path):
    user_config = tmp_path / f'coop_{dataset}.py'
    user_config.write_text(
        f"_base_ = ['{ROOT}/configs/prompt/_base_/datasets/{dataset}.py']\n"
        "model = dict(type='CoOp', num_context=2)\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.002, momentum=0.9))\n")
    cfg = Config.fromfile(user_config)
    cfg = Config(relocate(cfg.to_dict(), f'data/{dataset}/', f'{image_folder}/', teacher_cfg))
    model = MODELS.build(cfg.model)
    names = ['goldfish', 'sea lion', 'face', 'Boeing 747', 'apple pie']
    base, novel = base_novel_split(names)
    assert model.classes == base and model.test_classes == names
    assert len(model.templates) == 1 and '{}' in model.templates[0]

    train = DATASET_REGISTRY.build(cfg.train_dataloader.dataset)
    assert train.metainfo['classes'] == tuple(base) and len(train) == 6
    batch = pseudo_collate([train[i] for i in range(4)])
    assert batch['inputs'][0].shape == (3, 224, 224)
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert losses['loss_ce'] > 0

    val = DATASET_REGISTRY.build(cfg.val_dataloader.dataset)
    assert len(val) == 10 and val.metainfo['classes'] == tuple(names)
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = val.metainfo
    for start in range(0, len(val), 5):
        batch = pseudo_collate([val[i] for i in range(start, start + 5)])
        evaluator.process(model.val_step(batch), batch)
    metrics = evaluator.evaluate(len(val))
    assert set(metrics) == {'fewshot/top1', 'fewshot/base', 'fewshot/novel', 'fewshot/H'}
