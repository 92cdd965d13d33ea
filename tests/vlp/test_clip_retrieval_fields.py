"""CLIPPretrainer gives the retrieval fields (image_embedding, text_embedding(s)) in predict,
checked against open_clip's own towers, so that ImageTextRetrievalMetric evaluates it."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from vlkd.evaluation.retrieval import ImageTextRetrievalMetric
from vlkd.registry import MODELS

CAPTIONS = [['a red star', 'a star on the left'], ['a blue circle'], ['two hearts', 'a heart']]


def _scenes():
    """Packed uint8 BGR images with all their captions, as ImageTextDataset(items='images')
    gives them."""
    g = torch.Generator().manual_seed(5)
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
              for _ in CAPTIONS]
    samples = [BaseDataElement(metainfo=dict(img_id=i, text=texts[0], texts=texts))
               for i, texts in enumerate(CAPTIONS)]
    return dict(inputs=inputs, data_samples=samples)


def test_predict_gives_open_clip_embeddings_of_images_and_all_captions(tiny_clip_cfg):
    init_default_scope('vlkd')
    torch.manual_seed(0)
    model = MODELS.build(dict(type='CLIPPretrainer', model_cfg=tiny_clip_cfg)).eval()
    data = model.data_preprocessor(_scenes(), False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
        images = F.normalize(model.clip.encode_image(data['inputs']), dim=-1)
        texts = [F.normalize(model.clip.encode_text(model.tokenize(c)), dim=-1)
                 for c in CAPTIONS]
    for sample, image, captions in zip(samples, images, texts):
        torch.testing.assert_close(sample.image_embedding, image)
        torch.testing.assert_close(sample.text_embeddings, captions)
        torch.testing.assert_close(sample.text_embedding, captions[0])
        assert 'pred_score' not in sample  # no zero_shot classes: retrieval only

    metric = ImageTextRetrievalMetric(ks=(1, 2))
    metric.process({}, [s.to_dict() for s in samples])
    result = metric.compute_metrics(metric.results)
    # by hand: image i is found at K if one of its captions is among its K most similar
    all_texts = torch.cat(texts)
    owner = torch.tensor([i for i, c in enumerate(CAPTIONS) for _ in c])
    similarity = images @ all_texts.T
    for k in (1, 2):
        hits = [bool(set(similarity[i].topk(k).indices.tolist()) & set(
            (owner == i).nonzero().flatten().tolist())) for i in range(len(CAPTIONS))]
        assert result[f'i2t_R@{k}'] == pytest.approx(100.0 * sum(hits) / len(hits))
        hits = [owner[j].item() in similarity[:, j].topk(k).indices.tolist()
                for j in range(len(all_texts))]
        assert result[f't2i_R@{k}'] == pytest.approx(100.0 * sum(hits) / len(hits))
