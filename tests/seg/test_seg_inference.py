"""OpenVocabSegmenter and tools/segment.py: any vocabulary, background kept, the drawing."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

import vlkd  # noqa: F401
from vlkd.registry import MODELS
from vlkd.seg.inference import OpenVocabSegmenter, draw_segmentation, read_rgb
from vlkd.teachers.embedding_file import save_class_embeddings
from vlkd.teachers import build_teacher

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'seg' / 'deeplabv3plus_r18_gt_shapes.py'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def trained(relocate_config, tmp_path):
    """A relocated student config written to disk and a checkpoint of its (random)
    weights."""
    cfg = relocate_config(Config.fromfile(CONFIG))
    config_path = tmp_path / 'student.py'
    cfg.dump(config_path)
    model = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'student.pth'
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), str(checkpoint))
    return config_path, checkpoint


def test_segmenter_keeps_background_and_matches_the_model(trained, shapes_root):
    config, checkpoint = trained
    segmenter = OpenVocabSegmenter.from_config(str(config), str(checkpoint))
    assert segmenter.background == 'background' and len(segmenter.classes) == 13
    image = shapes_root / 'images' / 'test' / sorted(
        p.name for p in (shapes_root / 'images' / 'test').glob('*.png'))[0]
    segmenter.set_classes(['star', 'moon'])
    assert segmenter.classes == ['background', 'star', 'moon']
    result = segmenter(str(image))
    rgb = read_rgb(image)
    assert result['labels'].shape == rgb.shape[:2] and result['labels'].max() <= 2
    assert ((result['scores'] > 1 / 3 - 1e-6) & (result['scores'] <= 1 + 1e-6)).all()
    # the same image as a BGR array gives the same labels
    assert np.array_equal(segmenter(rgb[:, :, ::-1].copy())['labels'], result['labels'])
    with torch.no_grad():
        logits = segmenter.model.test_step(dict(
            inputs=[torch.from_numpy(rgb[:, :, ::-1].copy()).permute(2, 0, 1)],
            data_samples=None))
    assert np.array_equal(logits[0].pred_sem_seg.data[0].numpy(), result['labels'])
    canvas = draw_segmentation(rgb, result, scale=2)
    assert canvas.height >= 2 * rgb.shape[0] and canvas.width > 2 * rgb.shape[1]
    # background pixels are left as they are
    plain = np.asarray(canvas)[:2 * rgb.shape[0]:2, :2 * rgb.shape[1]:2]
    background = result['labels'] == 0
    assert np.array_equal(plain[background], rgb[background])


def test_segment_tool_with_classes_and_embedding_file(trained, shapes_root, tmp_path,
                                                      tiny_teacher_cfg, capsys):
    config, checkpoint = trained
    image = next((shapes_root / 'images' / 'test').glob('*.png'))
    segment = load_tool('segment')
    out = tmp_path / 'out.png'
    result = segment.main([str(image), '--config', str(config), '--checkpoint',
                           str(checkpoint), '--classes', 'circle, star', '--out', str(out)])
    assert out.is_file() and result['classes'] == ['background', 'circle', 'star']
    assert 'of the image' in capsys.readouterr().out
    teacher = build_teacher(tiny_teacher_cfg)
    names = ['background', 'heart', 'arrow']
    embeddings_file = save_class_embeddings(tmp_path / 'vocab.pt', names,
                                            teacher.encode_class_names(names),
                                            teacher.fingerprint, 'templates: shapes')
    result = segment.main([str(image), '--config', str(config), '--checkpoint',
                           str(checkpoint), '--vocabulary', str(embeddings_file),
                           '--out', str(out)])
    assert result['classes'] == names
    with pytest.raises(SystemExit, match='does not exist'):
        segment.main([str(tmp_path / 'nope.png'), '--config', str(config), '--out', str(out)])
