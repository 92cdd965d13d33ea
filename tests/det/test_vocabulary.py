"""Vocabularies: text files of class names and class-embedding files, each bad file named."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from vlkd.det import TextVocabulary, ViLDBBoxHead, read_vocabulary_file
from vlkd.teachers.embedding_file import ClassEmbeddingFileError, save_class_embeddings


def test_text_file_one_name_per_line(tmp_path):
    path = tmp_path / 'vocab.txt'
    path.write_text('star\n  traffic light \nheart\n')
    assert read_vocabulary_file(path) == (['star', 'traffic light', 'heart'], None)


@pytest.mark.parametrize('text, message', [
    ('star\n\nheart\n', 'line 2 is empty'),
    ('star\nheart\n   \n', 'line 3 is empty'),
    ('star\nheart\nstar\n', "'star' on line 3 repeats line 1"),
    ('', 'holds no class names'),
])
def test_bad_text_files_are_named(tmp_path, text, message):
    path = tmp_path / 'vocab.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_vocabulary_file(path)


def test_embedding_files_are_checked_against_the_model(tmp_path):
    path = save_class_embeddings(tmp_path / 'v.pt', ['star', 'moon'], torch.randn(2, 8),
                                 teacher_fingerprint='f' * 64, source='test')
    names, embeddings = read_vocabulary_file(path, embed_dim=8, teacher_fingerprint='f' * 64)
    assert names == ['star', 'moon'] and embeddings.shape == (2, 8)
    with pytest.raises(ClassEmbeddingFileError, match='8-d embeddings, the model uses 16-d'):
        read_vocabulary_file(path, embed_dim=16)
    with pytest.raises(ClassEmbeddingFileError, match='made with teacher ffffffffffff'):
        read_vocabulary_file(path, teacher_fingerprint='e' * 64)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_vocabulary_file(tmp_path / 'absent.txt')


def test_head_reads_its_classes_from_an_embedding_file(tmp_path):
    torch.manual_seed(0)
    raw = torch.randn(4, 8)
    file_order = ['heart', 'circle', 'star', 'square']
    path = save_class_embeddings(tmp_path / 'v.pt', file_order, raw,
                                 teacher_fingerprint='a' * 64, source='test')
    init_default_scope('mmdet')
    head = ViLDBBoxHead(train_classes=['circle', 'square'], test_classes=['star', 'circle'],
                        vocabulary=dict(embedding_file=str(path)), in_channels=8,
                        fc_out_channels=16)
    rows = F.normalize(raw, dim=-1)
    torch.testing.assert_close(head.train_embeddings, rows[[1, 3]])
    torch.testing.assert_close(head.test_embeddings, rows[[2, 1]])
    assert head.vocabulary.fingerprint == 'a' * 64 and head.embed_dim == 8
    head.set_test_vocabulary(['heart'])
    torch.testing.assert_close(head.test_embeddings, rows[[0]])
    with pytest.raises(ClassEmbeddingFileError, match=r"\['moon'\] are not in the embedding "
                                                      r'file.*tools/embed_text.py'):
        head.set_test_vocabulary(['moon', 'star'])
    with pytest.raises(ClassEmbeddingFileError, match=r"\['triangle'\] are not in"):
        ViLDBBoxHead(train_classes=['circle', 'triangle'], test_classes=['star'],
                     vocabulary=dict(embedding_file=str(path)), in_channels=8)


def test_a_vocabulary_has_one_source(tmp_path, tiny_teacher_cfg):
    with pytest.raises(ValueError, match='exactly one of teacher'):
        TextVocabulary()
    with pytest.raises(ValueError, match='exactly one of teacher'):
        TextVocabulary(teacher=tiny_teacher_cfg, embedding_file=str(tmp_path / 'v.pt'))
    with pytest.raises(ValueError, match='templates apply to teacher vocabularies'):
        TextVocabulary(embedding_file=str(tmp_path / 'v.pt'), templates='shapes')
