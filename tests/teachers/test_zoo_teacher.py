"""Teacher.from_zoo: tiny teachers published as zoo entries, served by the zoo tests' loopback
HTTP server, downloaded, verified and built into teachers identical to the same files loaded
directly: open_clip weights, an OpenAI-style TorchScript archive, a transformers directory
archive and a vlkd checkpoint."""
import copy
import importlib.util
import io
import tarfile
from pathlib import Path

import open_clip
import pytest
import torch
from mmengine.config import Config
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from vlkd import zoo
from vlkd.teachers import (HFCLIPTeacher, OpenAICLIPTeacher, OpenCLIPTeacher, Teacher,
                           VLKDTeacher, build_teacher, clip_bpe_tokenizer)
from vlkd.vlp import CLIPPretrainer

# the loopback server and zoo sandbox fixtures of tests/zoo
_spec = importlib.util.spec_from_file_location(
    'zoo_fixtures', Path(__file__).resolve().parents[1] / 'zoo' / 'conftest.py')
_zoo_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_zoo_fixtures)
server, sandbox = _zoo_fixtures.server, _zoo_fixtures.sandbox

TEXTS = ['a red star', 'a blue circle']


def file_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def publish(server, sandbox, tmp_path, name, data, **entry):
    """Serve ``data`` at 127.0.0.1 as zoo entry ``name``; returns a local copy of the file."""
    filename = entry.pop('filename', f'{name}.bin')
    url = server.add(f'/models/{filename}', data)
    sandbox.manifest(sandbox.entry(name, [url], data, **entry))
    local = tmp_path / 'local' / filename
    local.parent.mkdir(exist_ok=True)
    local.write_bytes(data)
    return local


def images(seed=0, size=32):
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


def assert_same_embeddings(got: Teacher, expected: Teacher):
    torch.testing.assert_close(got.encode_text(TEXTS), expected.encode_text(TEXTS), rtol=0,
                               atol=0)
    torch.testing.assert_close(got.encode_image(images()), expected.encode_image(images()),
                               rtol=0, atol=0)
    assert got.fingerprint == expected.fingerprint


def test_open_clip_weights_entry(server, sandbox, tmp_path, tiny_clip_cfg, monkeypatch):
    torch.manual_seed(5)
    weights = file_bytes(open_clip.CLIP(**tiny_clip_cfg).state_dict())
    local = publish(server, sandbox, tmp_path, 'tiny-clip', weights,
                    load=dict(library='open_clip', model_cfg=tiny_clip_cfg))
    teacher = Teacher.from_zoo('tiny-clip', templates='shapes')
    assert isinstance(teacher, OpenCLIPTeacher) and teacher.templates[0] == 'a {}'
    assert_same_embeddings(teacher, OpenCLIPTeacher(model_cfg=tiny_clip_cfg,
                                                    pretrained=str(local)))
    assert len(server.requests_for('/models/tiny-clip.bin')) == 1
    # later builds use the verified cache, also offline and from a config
    monkeypatch.setenv('VLKD_OFFLINE', '1')
    again = build_teacher(dict(type='ZooTeacher', name='zoo://tiny-clip'))
    assert again.fingerprint == teacher.fingerprint
    assert len(server.requests_for('/models/tiny-clip.bin')) == 1


def openai_style_archive(tiny_clip_cfg) -> tuple:
    """(archive bytes, model): a tiny CLIP as OpenAI ships theirs: a TorchScript archive of a
    QuickGELU model whose weights are float16 values, the causal mask a constant rather than
    a buffer, heads of width 64 (what open_clip assumes when it reads OpenAI's files)."""
    cfg = copy.deepcopy(tiny_clip_cfg)
    cfg['vision_cfg'].update(width=64, head_width=64)
    cfg['text_cfg'].update(width=64, heads=1)
    torch.manual_seed(6)
    model = open_clip.CLIP(**cfg, quick_gelu=True).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(param.half().float())
    model.attn_mask = model._buffers.pop('attn_mask')
    traced = torch.jit.trace_module(model, {'encode_image': torch.zeros(1, 3, 32, 32),
                                            'encode_text': torch.zeros(1, 16, dtype=torch.long)})
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue(), model


def test_openai_torchscript_entry(server, sandbox, tmp_path, tiny_clip_cfg):
    archive, model = openai_style_archive(tiny_clip_cfg)
    local = publish(server, sandbox, tmp_path, 'tiny-openai', archive, format='torchscript',
                    load=dict(library='open_clip'), filename='tiny-openai.pt')
    with pytest.raises(RuntimeError, match='weights_only'):
        torch.load(local, weights_only=True)  # why these files need their own loader
    teacher = Teacher.from_zoo('tiny-openai')
    assert isinstance(teacher, OpenAICLIPTeacher)
    tokens = open_clip.SimpleTokenizer(context_length=16)(TEXTS)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        texts = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
        pixels = torch.nn.functional.normalize(model.encode_image((images() - mean) / std),
                                               dim=-1)
    torch.testing.assert_close(teacher.encode_text(TEXTS), texts, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(teacher.encode_image(images()), pixels, atol=1e-6, rtol=1e-6)
    assert teacher.encode_dense(images()).shape == (2, 32, 4, 4)
    # a manifest that names the wrong architecture is caught by the weight shapes
    sandbox.manifest(sandbox.entry('tiny-openai', [server.url('/models/tiny-openai.pt')],
                                   archive, format='torchscript', filename='tiny-openai.pt',
                                   load=dict(library='open_clip',
                                             model_name='ViT-B-32-quickgelu')))
    with pytest.raises(ValueError, match='is not a ViT-B-32-quickgelu model: .* weights differ'):
        Teacher.from_zoo('tiny-openai')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'\x00' * 64)
    with pytest.raises(ValueError, match='is not an OpenAI CLIP file'):
        OpenAICLIPTeacher(str(garbage))


def tar_of_directory(directory: Path, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz' if compress else 'w') as tar:
        tar.add(directory, arcname='tiny-hf-clip')
    return buffer.getvalue()


@pytest.mark.slow  # loads transformers' tokenizer files: seconds on 2 cores
def test_transformers_directory_archive_entry(server, sandbox, tmp_path):
    torch.manual_seed(7)
    config = dict(projection_dim=16,
                  text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, max_position_embeddings=16),
                  vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=2, image_size=32, patch_size=16))
    directory = tmp_path / 'saved'
    CLIPModel(CLIPConfig(**config)).save_pretrained(directory)
    clip_bpe_tokenizer().save_pretrained(directory)
    CLIPImageProcessor().save_pretrained(directory)
    publish(server, sandbox, tmp_path, 'tiny-hf-clip', tar_of_directory(directory),
            load=dict(library='transformers'), filename='tiny-hf-clip.tar.gz')
    teacher = Teacher.from_zoo('tiny-hf-clip')
    assert isinstance(teacher, HFCLIPTeacher)
    assert_same_embeddings(teacher, HFCLIPTeacher(model_dir=str(directory)))
    unpacked = zoo.cache_path(zoo.get_entry('tiny-hf-clip')).with_name(
        'tiny-hf-clip.tar.gz.unpacked')
    mark = unpacked / '.vlkd-unpacked-from'
    stamp = mark.stat().st_mtime_ns
    Teacher.from_zoo('tiny-hf-clip')
    assert mark.stat().st_mtime_ns == stamp  # unpacked once


def test_unsafe_or_foreign_archives_are_refused(server, sandbox, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        member = tarfile.TarInfo('../escaped.txt')
        member.size = 2
        tar.addfile(member, io.BytesIO(b'hi'))
    publish(server, sandbox, tmp_path, 'evil', buffer.getvalue(),
            load=dict(library='transformers'), filename='evil.tar')
    with pytest.raises(zoo.ManifestError, match='unsafe member'):
        Teacher.from_zoo('evil')
    assert not (sandbox.home / 'zoo' / 'escaped.txt').exists()
    publish(server, sandbox, tmp_path, 'not-a-tar', b'plain bytes',
            load=dict(library='transformers'))
    with pytest.raises(zoo.ManifestError, match='is not a tar archive'):
        Teacher.from_zoo('not-a-tar')


def test_vlkd_checkpoint_entry(server, sandbox, tmp_path, tiny_clip_cfg):
    """What tools/publish_model.py writes: format mmengine-checkpoint, no load mapping."""
    model_cfg = dict(type='CLIPPretrainer', model_cfg=tiny_clip_cfg,
                     zero_shot=dict(classes=['star', 'circle'], templates='shapes'))
    torch.manual_seed(8)
    pretrainer = CLIPPretrainer(**{k: v for k, v in model_cfg.items() if k != 'type'})
    checkpoint = dict(meta=dict(cfg=Config(dict(model=model_cfg, default_scope='vlkd'))
                                .pretty_text),
                      state_dict=pretrainer.state_dict())
    local = publish(server, sandbox, tmp_path, 'tiny-vlkd', file_bytes(checkpoint),
                    format='mmengine-checkpoint', filename='tiny-vlkd.pth')
    teacher = Teacher.from_zoo('tiny-vlkd')
    assert teacher.templates[0] == 'a {}'  # the checkpoint's zero-shot templates
    assert_same_embeddings(teacher, VLKDTeacher(str(local)))
    assert teacher.encode_dense(images()).shape == (2, 32, 4, 4)  # MaskCLIP on its tower


def test_entries_that_name_no_teacher_are_refused(server, sandbox, tmp_path):
    publish(server, sandbox, tmp_path, 'mystery', b'x' * 10)
    with pytest.raises(zoo.ManifestError, match="load.library is None; a teacher needs one of "
                                                r"\['open_clip', 'transformers', 'vlkd'\]"):
        Teacher.from_zoo('mystery')
    assert server.requests_for('/models/mystery.bin') == []  # refused before downloading
    publish(server, sandbox, tmp_path, 'half', b'x' * 10, load=dict(library='open_clip'))
    with pytest.raises(zoo.ManifestError, match='exactly one of load.model_name'):
        Teacher.from_zoo('half')
    with pytest.raises(zoo.UnknownModelError, match='Did you mean half'):
        Teacher.from_zoo('halff')


def test_every_repository_manifest_entry_names_a_teacher_loader():
    """The public CLIP teachers of model_zoo/ (checked without downloading them): OpenAI's
    TorchScript archives go to OpenAICLIPTeacher with an open_clip architecture to match."""
    from vlkd.teachers.zoo_teacher import teacher_library
    from vlkd.zoo.manifest import REPO_MANIFEST_DIR
    entries = zoo.list_models(REPO_MANIFEST_DIR)
    assert entries
    for entry in entries:
        assert teacher_library(entry) in ('open_clip', 'transformers', 'vlkd')
    openai = zoo.get_entry('clip-vit-b-32-openai', REPO_MANIFEST_DIR)
    assert openai.format == 'torchscript' and openai.load['model_name'] in open_clip.list_models()
