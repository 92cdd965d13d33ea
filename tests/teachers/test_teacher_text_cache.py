"""Class-name embeddings: prompt ensembling by the formula, and the on-disk cache (hits,
misses, keys, corrupt files)."""
import os

import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import OpenCLIPTeacher, TextEmbeddingCache
from vlkd.teachers.templates import SHAPES_TEMPLATES, fill_template, resolve_templates


@pytest.fixture
def make_teacher(tiny_clip_cfg):
    def make(seed=0):
        torch.manual_seed(seed)
        return OpenCLIPTeacher(model_cfg=tiny_clip_cfg)
    return make


def count_text_calls(teacher, monkeypatch) -> list:
    """Record the strings the teacher's text tower is asked to embed."""
    calls = []
    original = teacher._text_features

    def recording(texts):
        calls.extend(texts)
        return original(texts)

    monkeypatch.setattr(teacher, '_text_features', recording)
    return calls


def cache_files():
    return sorted((TextEmbeddingCache().root).glob('*'))


def test_prompt_ensemble_follows_the_formula(make_teacher):
    teacher = make_teacher()
    got = teacher.encode_class_names(['star', 'ellipse'], ['a {}', 'a photo of a {}.'])
    model, tokenizer = teacher.model, teacher.tokenizer
    with torch.no_grad():
        rows = []
        for texts in (['a star', 'a photo of a star.'], ['an ellipse', 'a photo of an ellipse.']):
            per_template = F.normalize(model.encode_text(tokenizer(texts)), dim=-1)
            rows.append(F.normalize(per_template.mean(0), dim=-1))
    torch.testing.assert_close(got, torch.stack(rows))
    assert got.shape == (2, teacher.embed_dim)


def test_miss_then_hit(make_teacher, monkeypatch):
    teacher = make_teacher()
    calls = count_text_calls(teacher, monkeypatch)
    first = teacher.encode_class_names(['star', 'circle'], 'shapes')
    assert len(calls) == 2 * len(SHAPES_TEMPLATES)
    assert len(cache_files()) == 1
    calls.clear()
    fresh = make_teacher()  # a new instance with the same weights
    fresh_calls = count_text_calls(fresh, monkeypatch)
    second = fresh.encode_class_names(['star', 'circle'], 'shapes')
    third = teacher.encode_class_names(['star', 'circle'], list(SHAPES_TEMPLATES))
    assert calls == [] and fresh_calls == []
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, third, rtol=0, atol=0)
    assert [f.suffix for f in cache_files()] == ['.pt']  # no temporary file left behind


def test_key_changes_with_names_templates_and_weights(make_teacher, monkeypatch):
    teacher = make_teacher()
    calls = count_text_calls(teacher, monkeypatch)
    teacher.encode_class_names(['star', 'circle'], 'shapes')
    teacher.encode_class_names(['circle', 'star'], 'shapes')
    teacher.encode_class_names(['star', 'circle'], 'photo')
    teacher.encode_class_names(['star', 'circle'], ['a {}'])
    assert len(calls) == 2 * (2 * len(SHAPES_TEMPLATES) + len(resolve_templates('photo')) + 1)
    other = make_teacher(seed=1)
    assert other.fingerprint != teacher.fingerprint
    assert make_teacher(seed=0).fingerprint == teacher.fingerprint
    other.encode_class_names(['star', 'circle'], 'shapes')
    assert len(cache_files()) == 5
    key = TextEmbeddingCache.key
    assert len({key('f', ['a', 'b'], ['{}']), key('f', ['b', 'a'], ['{}']),
                key('f', ['a', 'b'], ['{}.']), key('g', ['a', 'b'], ['{}'])}) == 4


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'wrong_shape', 'nan'])
def test_a_corrupt_file_is_recomputed(make_teacher, monkeypatch, damage):
    teacher = make_teacher()
    expected = teacher.encode_class_names(['star', 'heart'], 'shapes')
    (path,) = cache_files()
    if damage == 'garbage':
        path.write_bytes(b'not a torch file')
    elif damage == 'truncated':
        path.write_bytes(path.read_bytes()[:100])
    else:
        stored = torch.load(path, weights_only=True)
        if damage == 'wrong_shape':
            stored['embeddings'] = stored['embeddings'][:1]
        else:
            stored['embeddings'][0, 0] = float('nan')
        torch.save(stored, path)
    calls = count_text_calls(teacher, monkeypatch)
    torch.testing.assert_close(teacher.encode_class_names(['star', 'heart'], 'shapes'), expected)
    assert len(calls) == 2 * len(SHAPES_TEMPLATES)
    calls.clear()
    teacher.encode_class_names(['star', 'heart'], 'shapes')  # the file was rewritten
    assert calls == []


def test_cache_lives_under_vlkd_home(make_teacher, tmp_path, monkeypatch):
    monkeypatch.setenv('VLKD_HOME', str(tmp_path / 'elsewhere'))
    make_teacher().encode_class_names(['star'], ['a {}'])
    assert len(os.listdir(tmp_path / 'elsewhere' / 'cache' / 'text')) == 1


def test_templates_resolve_or_fail_clearly():
    assert resolve_templates('shapes') == SHAPES_TEMPLATES
    assert resolve_templates('a drawing of a {}') == ('a drawing of a {}',)
    assert resolve_templates(None, default='shapes') == SHAPES_TEMPLATES
    assert fill_template('a photo of a {}.', 'orange star') == 'a photo of an orange star.'
    assert fill_template('a {}', 'star') == 'a star'
    with pytest.raises(ValueError, match='Unknown template set'):
        resolve_templates('shapez')
    with pytest.raises(ValueError, match='exactly once'):
        resolve_templates(['a {} and a {}'])
    with pytest.raises(ValueError, match='empty'):
        resolve_templates([])
