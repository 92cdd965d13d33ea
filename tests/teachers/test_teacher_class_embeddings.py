"""Class lists against teachers: encode_class_names rejects bad lists, and a class-embedding
file is accepted only by the teacher that made it and for the classes it holds."""
import copy

import pytest
import torch

from vlkd.teachers import ClassEmbeddingFileError, OpenCLIPTeacher
from vlkd.teachers.embedding_file import save_class_embeddings


def make_teacher(cfg, seed=0, embed_dim=None):
    cfg = copy.deepcopy(cfg)
    if embed_dim is not None:
        cfg['embed_dim'] = embed_dim
    torch.manual_seed(seed)
    return OpenCLIPTeacher(model_cfg=cfg)


def test_encode_class_names_rejects_bad_lists(tiny_clip_cfg):
    teacher = make_teacher(tiny_clip_cfg)
    with pytest.raises(ValueError, match=r"repeats \['star'\]"):
        teacher.encode_class_names(['star', 'circle', 'star'])
    with pytest.raises(ValueError, match='empty name at position 1'):
        teacher.encode_class_names(['star', '  '])
    with pytest.raises(ValueError, match='is empty'):
        teacher.encode_class_names([])


def test_class_embedding_file_is_checked_against_the_teacher(tiny_clip_cfg, tmp_path):
    teacher = make_teacher(tiny_clip_cfg)
    names = ['star', 'circle', 'heart']
    path = save_class_embeddings(tmp_path / 'vocab.pt', names,
                                 teacher.encode_class_names(names, 'shapes'),
                                 teacher.fingerprint, 'templates: shapes')
    got = teacher.load_class_embeddings(path, classes=['heart', 'star', 'circle'])
    torch.testing.assert_close(got, teacher.encode_class_names(['heart', 'star', 'circle'],
                                                               'shapes'))
    with pytest.raises(ClassEmbeddingFileError, match=r"missing: \['moon'\]"):
        teacher.load_class_embeddings(path, classes=['star', 'circle', 'moon'])
    with pytest.raises(ClassEmbeddingFileError, match=r"not asked for: \['heart'\]"):
        teacher.load_class_embeddings(path, classes=['star', 'circle'])
    other = make_teacher(tiny_clip_cfg, seed=1)
    with pytest.raises(ClassEmbeddingFileError, match=f'made with teacher '
                                                      f'{teacher.fingerprint[:12]}'):
        other.load_class_embeddings(path)
    narrower = make_teacher(tiny_clip_cfg, embed_dim=16)
    with pytest.raises(ClassEmbeddingFileError, match='holds 32-d embeddings, the model uses '
                                                      '16-d'):
        narrower.load_class_embeddings(path)
