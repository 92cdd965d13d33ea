"""Class-embedding files: round trip, reordering, and every mismatch named."""
import pytest
import torch

from vlkd.teachers.embedding_file import (ClassEmbeddingFileError, load_class_embeddings,
                                          save_class_embeddings)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    raw = torch.randn(3, 8) * 5
    path = save_class_embeddings(tmp_path / 'vocab.pt', ['star', 'circle', 'heart'], raw,
                                 teacher_fingerprint='abc123', source='templates: shapes')
    return path, raw


def test_round_trip_normalises_rows(saved):
    path, raw = saved
    loaded = load_class_embeddings(path, embed_dim=8, teacher_fingerprint='abc123')
    assert loaded['classes'] == ['star', 'circle', 'heart']
    expected = raw / raw.norm(dim=1, keepdim=True)
    torch.testing.assert_close(loaded['embeddings'], expected)
    assert loaded['source'] == 'templates: shapes'


def test_rows_follow_the_requested_class_order(saved):
    path, raw = saved
    loaded = load_class_embeddings(path, classes=['heart', 'star', 'circle'])
    expected = raw[[2, 0, 1]] / raw[[2, 0, 1]].norm(dim=1, keepdim=True)
    torch.testing.assert_close(loaded['embeddings'], expected)
    assert loaded['classes'] == ['heart', 'star', 'circle']


@pytest.mark.parametrize('kwargs, message', [
    (dict(classes=['star', 'circle']), r'holds 3 classes, 2 were asked for; not asked for: '
                                       r"\['heart'\]"),
    (dict(classes=['star', 'circle', 'moon']), r"missing: \['moon'\]"),
    (dict(embed_dim=16), 'holds 8-d embeddings, the model uses 16-d'),
    (dict(teacher_fingerprint='zzz'), 'made with teacher abc123.*another space'),
])
def test_mismatches_are_named(saved, kwargs, message):
    with pytest.raises(ClassEmbeddingFileError, match=message):
        load_class_embeddings(saved[0], **kwargs)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='tools/embed_text.py'):
        load_class_embeddings(tmp_path / 'absent.pt')
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'not a torch file')
    with pytest.raises(ClassEmbeddingFileError, match='Cannot read'):
        load_class_embeddings(corrupt)
    other = tmp_path / 'other.pt'
    torch.save(dict(embeddings=torch.zeros(2, 4)), other)
    with pytest.raises(ClassEmbeddingFileError, match="needs keys .*'classes'"):
        load_class_embeddings(other)


def test_saving_checks_names_and_shapes(tmp_path):
    with pytest.raises(ClassEmbeddingFileError, match='repeats'):
        save_class_embeddings(tmp_path / 'a.pt', ['star', 'star'], torch.ones(2, 4), 'f', 's')
    with pytest.raises(ClassEmbeddingFileError, match='empty name at position 1'):
        save_class_embeddings(tmp_path / 'a.pt', ['star', ' '], torch.ones(2, 4), 'f', 's')
    with pytest.raises(ClassEmbeddingFileError, match=r'shape \(2, D\)'):
        save_class_embeddings(tmp_path / 'a.pt', ['star', 'moon'], torch.ones(3, 4), 'f', 's')
    assert not (tmp_path / 'a.pt').exists()
