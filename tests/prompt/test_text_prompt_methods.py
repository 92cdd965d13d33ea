"""CoOp, CoCoOp and MaPLe: reductions to the template classifier, which is computed here
through the teacher's public interface (its tokenizer and text tower via
``encode_class_names``, its image tower via ``encode_image``), and their learnable parts."""
import pytest
import torch
import torch.nn.functional as F

from vlkd.prompt import CoCoOp, CoOp, MaPLe
from vlkd.prompt.classifier import ClassVocabularyError

NAMES = ['circle', 'ellipse', 'arrow', 'star']  # 'an ellipse', 'an arrow' under 'a {}'


def _images(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 40, 40, generator=g) * 255  # resized to 32 px inside


def template_logits(teacher, images, names, template, scale):
    """The zero-shot classifier with one template, from the teacher's interface."""
    return scale * teacher.encode_image(images) @ teacher.encode_class_names(names, [template]).T


@pytest.mark.parametrize('position', ['end', 'middle', 'front'])
@pytest.mark.parametrize('template', ['{}.', 'a {}', 'a photo of a {}.'])
@pytest.mark.parametrize('which', ['teacher', 'hf_teacher'])
def test_coop_without_context_is_the_template_classifier(which, template, position, request):
    teacher = request.getfixturevalue(which)
    model = CoOp(teacher, NAMES, num_context=0, template=template, class_position=position)
    images = _images()
    expected = template_logits(teacher, images, NAMES, template, model.logit_scale)
    torch.testing.assert_close(model(images), expected, rtol=1e-5, atol=1e-5)
    assert model.logit_scale == pytest.approx(teacher.model.logit_scale.exp().item())


def test_coop_initialised_from_a_phrase_is_that_template(teacher):
    names = ['circle', 'star', 'square']  # no 'an': the phrase is fixed text
    model = CoOp(teacher, names, context_init='a photo of a', template='{}.')
    assert model.prompts.num_context == 4
    expected = template_logits(teacher, _images(), names, 'a photo of a {}.', model.logit_scale)
    torch.testing.assert_close(model(_images()), expected, rtol=1e-5, atol=1e-5)


def test_coop_context_arguments(teacher):
    with pytest.raises(ValueError, match='4 tokens but num_context=2'):
        CoOp(teacher, NAMES, num_context=2, context_init='a photo of a')
    with pytest.raises(ValueError, match='class_position must be one of'):
        CoOp(teacher, NAMES, num_context=2, class_position='left')
    # CoOp's default of 16 context vectors does not fit the tiny tower's 16 tokens
    with pytest.raises(ValueError, match='is 20 tokens with 16 context vectors'):
        CoOp(teacher, NAMES)


def test_coop_learns_only_the_context(teacher):
    model = CoOp(teacher, NAMES, num_context=4)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ['prompts.context']
    labels = torch.tensor([0, 1, 3])
    loss = F.cross_entropy(model(_images()), labels)
    loss.backward()
    assert model.prompts.context.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_class_specific_contexts(teacher):
    model = CoOp(teacher, NAMES, num_context=2, class_specific=True)
    assert model.prompts.context.shape == (len(NAMES), 2, 32)
    with torch.no_grad():
        model.prompts.context.normal_()
        full = model(_images())
        subset = model.logits(model.teacher_pixels(_images()), ['star', 'circle'])
    torch.testing.assert_close(subset, full[:, [3, 0]])
    with torch.no_grad():  # each class reads its own context: changing 'arrow''s moves
        model.prompts.context[2] += torch.randn(2, 32)  # only the 'arrow' column
        moved = model(_images())
    assert torch.allclose(moved[:, [0, 1, 3]], full[:, [0, 1, 3]])
    assert not torch.allclose(moved[:, 2], full[:, 2])


def test_class_specific_model_refuses_unseen_classes(teacher):
    with pytest.raises(ClassVocabularyError, match=r"cannot score \['heart'\]"):
        CoOp(teacher, NAMES, num_context=2, class_specific=True, test_classes=NAMES + ['heart'])


def test_coop_scores_any_vocabulary(teacher):
    model = CoOp(teacher, NAMES, num_context=2, test_classes=NAMES + ['heart', 'crescent'])
    assert model(_images()).shape == (3, 6)


def test_cocoop_is_coop_plus_an_image_conditional_shift(teacher):
    model = CoCoOp(teacher, NAMES, context_init='a photo of a')
    images = _images()
    with torch.no_grad():
        model.meta_net[2].weight.zero_()
        model.meta_net[2].bias.zero_()
        coop = CoOp(teacher, NAMES, context_init='a photo of a')
        torch.testing.assert_close(model(images), coop(images), rtol=1e-5, atol=1e-5)
        # a shift pi(x) changes each image's prompts: image b's logits equal CoOp's with
        # the context moved by pi(x_b)
        model.meta_net[2].bias.normal_()
        shift = model.meta_net(model.image_embeddings(model.teacher_pixels(images)))
        logits = model(images)
        for b in range(len(images)):
            coop.prompts.context.copy_(model.prompts.context + shift[b])
            torch.testing.assert_close(logits[b], coop(images[b:b + 1])[0], rtol=1e-5,
                                       atol=1e-5)
    with pytest.raises(ClassVocabularyError, match='conditions its prompts on each image'):
        model.class_embeddings(NAMES)


def test_maple_couples_visual_prompts_to_text_prompts(teacher):
    model = MaPLe(teacher, NAMES, context_init='a photo of a', depth=2)
    assert model.deep_text_prompts.shape == (1, 4, 32)
    assert len(model.couplings) == 2
    prompts, deep = model.visual_prompts()
    torch.testing.assert_close(prompts, model.couplings[0](model.prompts.context))
    torch.testing.assert_close(deep[0], model.couplings[1](model.deep_text_prompts[0]))
    loss = model(_images()).logsumexp(1).mean()
    loss.backward()
    for name in ('prompts.context', 'deep_text_prompts', 'couplings.0.weight',
                 'couplings.1.weight'):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match='depth must be in 1..2'):
        MaPLe(teacher, NAMES, depth=3)


def test_maple_text_embeddings_are_exported(teacher):
    model = MaPLe(teacher, NAMES, depth=2)
    embeddings = model.class_embeddings(['heart', 'star'])
    assert embeddings.shape == (2, 32)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(2))
