"""Every configs/prompt method trains with tools/train.py and evaluates with tools/test.py
on the tiny shapes data (a couple of epochs); checkpoints that do not fit the config or
the dataset fail with messages that say so; tools/embed_text.py exports learned prompts."""
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from vlkd.prompt.classifier import ClassVocabularyError
from vlkd.teachers import build_teacher
from vlkd.teachers.embedding_file import load_class_embeddings

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs' / 'prompt'
GRADIENT_METHODS = ['coop_shapes', 'coop_csc_shapes', 'cocoop_shapes', 'vpt_shallow_shapes',
                    'vpt_deep_shapes', 'visual_prompt_shapes', 'maple_shapes',
                    'clip_adapter_shapes', 'tip_adapter_f_shapes']
CACHING_METHODS = ['tip_adapter_shapes', 'linear_probe_shapes']


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'vlkd_tools_{name}',
                                                  ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool, test_tool, embed_tool = (load_tool(n) for n in ('train', 'test', 'embed_text'))


def test_every_method_config_is_covered():
    shipped = sorted(p.stem for p in CONFIG_DIR.glob('*_shapes.py'))
    assert shipped == sorted(GRADIENT_METHODS + CACHING_METHODS)
    few_shot = sorted(p.stem for p in (CONFIG_DIR / 'few_shot').glob('*.py'))
    assert few_shot == sorted(name.replace('_shapes', '_shapes_fewshot') for name in shipped)


def short_config(name, relocate_config, teacher_cfg, tmp_path, epochs=2):
    """The shipped config on the tiny data and teacher, ``epochs`` epochs, a checkpoint
    after every epoch; written to a file for the tools."""
    cfg = relocate_config(Config.fromfile(CONFIG_DIR / f'{name}.py'), teacher=teacher_cfg)
    model = cfg.model
    if model.type == 'TipAdapter':
        model.cache_epochs = 1
        epochs = 2 if model.get('finetune') else 1
        for scheduler in cfg.get('param_scheduler', []):
            scheduler.update(begin=1, end=epochs)
    if model.type == 'LinearProbe':
        model.max_iter = 30
        epochs = 1
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=3)
    path = tmp_path / f'{name}.py'
    cfg.dump(str(path))
    return path, cfg


def learned_state(checkpoint):
    return torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('name', GRADIENT_METHODS)
def test_gradient_methods_train_and_test(name, relocate_config, teacher_cfg, tmp_path):
    path, cfg = short_config(name, relocate_config, teacher_cfg, tmp_path)
    work_dir = tmp_path / 'work'
    train_tool.main([str(path), '--work-dir', str(work_dir)])
    first, last = learned_state(work_dir / 'epoch_1.pth'), learned_state(work_dir / 'epoch_2.pth')
    assert not any(key.startswith('teacher.') for key in last)  # only what was learned
    learned = [k for k, v in last.items() if k != '_extra_state' and v.is_floating_point()
               and not k.startswith('cache.')]
    assert learned and any(not torch.equal(first[k], last[k]) for k in learned), learned
    metrics = test_tool.main([str(path), str(work_dir)])
    assert 0 <= metrics['fewshot/top1'] <= 100
    if cfg.test_evaluator.get('novel_classes'):
        assert {'fewshot/base', 'fewshot/novel', 'fewshot/H'} <= set(metrics)


@pytest.mark.slow
@pytest.mark.parametrize('name', CACHING_METHODS)
def test_caching_methods_train_and_test(name, relocate_config, teacher_cfg, tmp_path):
    path, cfg = short_config(name, relocate_config, teacher_cfg, tmp_path)
    runner = train_tool.main([str(path), '--work-dir', str(tmp_path / 'work')])
    cache = runner.model.cache
    assert len(cache) == len(runner.train_dataloader.dataset)
    assert cache.views.tolist() == [runner.model.cache_epochs] * len(cache)
    metrics = test_tool.main([str(path), str(tmp_path / 'work')])
    assert 0 <= metrics['fewshot/top1'] <= 100


@pytest.mark.slow
def test_tip_adapter_alpha_zero_run_reports_zero_shot(relocate_config, teacher_cfg, tmp_path):
    """The zero-shot row of the README: Tip-Adapter with alpha=0, checked against the
    teacher's own zero-shot predictions on the test crops."""
    path, cfg = short_config('tip_adapter_shapes', relocate_config, teacher_cfg, tmp_path)
    work_dir = str(tmp_path / 'work')
    train_tool.main([str(path), '--work-dir', work_dir, '--cfg-options', 'model.alpha=0'])
    metrics = test_tool.main([str(path), work_dir, '--cfg-options', 'model.alpha=0'])
    teacher = build_teacher(teacher_cfg)
    runner_cfg = Config.fromfile(str(path))
    from vlkd.registry import DATASETS
    dataset = DATASETS.build(runner_cfg.test_dataloader.dataset)
    names = list(dataset.metainfo['classes'])
    hits = []
    for index in range(len(dataset)):
        item = dataset[index]
        image = item['inputs'].flip(0).float()[None]  # BGR uint8 -> RGB float
        scores = teacher.encode_image(image) @ teacher.encode_class_names(names).T
        hits.append(int(scores.argmax()) == int(item['data_samples'].gt_label))
    assert metrics['fewshot/top1'] == pytest.approx(100 * sum(hits) / len(hits))


def test_checkpoints_that_do_not_fit_fail_clearly(relocate_config, teacher_cfg, tmp_path):
    path, cfg = short_config('coop_csc_shapes', relocate_config, teacher_cfg, tmp_path,
                             epochs=1)
    work_dir = str(tmp_path / 'work')
    train_tool.main([str(path), '--work-dir', work_dir])
    all_classes = '[' + ','.join(cfg.all_classes) + ']'
    # a config for all 12 classes cannot take a checkpoint trained on the 9 base classes
    with pytest.raises(ClassVocabularyError, match='trained on 9 classes, the model is '
                       r"configured for 12; not in the checkpoint: \['star', 'heart', "
                       r"'crescent'\]"):
        test_tool.main([str(path), work_dir, '--cfg-options', f'model.classes={all_classes}',
                        f'model.test_classes={all_classes}'])
    # a dataset of 12 classes cannot be scored by a model of 9
    with pytest.raises(ClassVocabularyError, match=r"scores 9 classes \['circle', .*\]\.\.\. but "
                       'the dataset has 12 classes'):
        test_tool.main([str(path), work_dir, '--cfg-options',
                        f'test_dataloader.dataset.classes={all_classes}'])


def test_embed_text_exports_learned_prompts(relocate_config, teacher_cfg, tmp_path):
    path, cfg = short_config('coop_shapes', relocate_config, teacher_cfg, tmp_path, epochs=1)
    work_dir = tmp_path / 'work'
    runner = train_tool.main([str(path), '--work-dir', str(work_dir)])
    out = embed_tool.main(['--prompt-checkpoint', str(work_dir), '--classes',
                           'heart,circle,crescent', '--out', str(tmp_path / 'coop.pth')])
    teacher = build_teacher(teacher_cfg)
    stored = load_class_embeddings(out, classes=['circle', 'heart', 'crescent'],
                                   embed_dim=teacher.embed_dim,
                                   teacher_fingerprint=teacher.fingerprint)
    trained = runner.model.class_embeddings(['circle', 'heart', 'crescent'])
    torch.testing.assert_close(stored['embeddings'], trained)
    assert stored['source'].startswith('CoOp prompts: ')
    # they are not the template embeddings
    templates = teacher.encode_class_names(['circle', 'heart', 'crescent'])
    assert not torch.allclose(stored['embeddings'], templates, atol=1e-3)
    # a detector's vocabulary reads the file in place of a teacher
    from vlkd.det.vocabulary import TextVocabulary
    vocabulary = TextVocabulary(embedding_file=str(out))
    torch.testing.assert_close(vocabulary.embed(['crescent']), trained[2:])
    assert vocabulary.fingerprint == teacher.fingerprint
    # without a vocabulary: the model's test classes
    default = embed_tool.main(['--prompt-checkpoint', str(work_dir), '--out',
                               str(tmp_path / 'all.pth')])
    assert load_class_embeddings(default)['classes'] == list(cfg.all_classes)


def test_embed_text_writes_template_embeddings(teacher_cfg, tmp_path):
    import json
    out = embed_tool.main(['--teacher', json.dumps(teacher_cfg), '--templates', 'a {} shape',
                           'a picture of a {}', '--classes', 'star,ellipse', '--out',
                           str(tmp_path / 'templates.pth')])
    teacher = build_teacher(teacher_cfg)
    stored = load_class_embeddings(out, teacher_fingerprint=teacher.fingerprint)
    torch.testing.assert_close(stored['embeddings'], teacher.encode_class_names(
        ['star', 'ellipse'], ['a {} shape', 'a picture of a {}']))
    assert stored['source'] == 'templates: a {} shape | a picture of a {}'
    names = tmp_path / 'names.txt'
    names.write_text('sea lion\nstar\n')
    out = embed_tool.main(['--teacher', json.dumps(teacher_cfg), '--classes', str(names),
                           '--out', str(tmp_path / 'default.pth')])
    torch.testing.assert_close(load_class_embeddings(out)['embeddings'],
                               teacher.encode_class_names(['sea lion', 'star']))
    with pytest.raises(ValueError, match='Give --teacher .* or --prompt-checkpoint'):
        embed_tool.main(['--classes', 'star', '--out', str(tmp_path / 'x.pth')])
