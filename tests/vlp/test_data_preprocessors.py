"""HostBatchImgDataPreprocessor against mmengine's ImgDataPreprocessor."""
import torch
from mmengine.model import ImgDataPreprocessor
from mmengine.structures import BaseDataElement

from vlkd.registry import MODELS
from vlkd.vlp.clip_model import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD

SETTINGS = dict(mean=CLIP_PIXEL_MEAN, std=CLIP_PIXEL_STD, bgr_to_rgb=True)


def batch(sizes):
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
    samples = [BaseDataElement(metainfo=dict(text=f'a caption {i}'),
                               gt_label=torch.tensor(i)) for i in range(len(sizes))]
    return dict(inputs=images, data_samples=samples)


def test_same_inputs_as_mmengine_and_samples_untouched():
    ours = MODELS.build(dict(type='HostBatchImgDataPreprocessor', **SETTINGS))
    theirs = ImgDataPreprocessor(**SETTINGS)
    data = batch([(16, 16)] * 4)
    expected = theirs(batch([(16, 16)] * 4))
    result = ours(data)
    torch.testing.assert_close(result['inputs'], expected['inputs'], rtol=0, atol=0)
    assert result['data_samples'] is data['data_samples']  # left as they are, on the host
    assert [int(s.gt_label) for s in result['data_samples']] == [0, 1, 2, 3]


def test_images_of_different_sizes_take_mmengine_path():
    ours = MODELS.build(dict(type='HostBatchImgDataPreprocessor', pad_size_divisor=8,
                             **SETTINGS))
    theirs = ImgDataPreprocessor(pad_size_divisor=8, **SETTINGS)
    sizes = [(16, 12), (10, 16)]
    data = batch(sizes)
    result = ours(data)
    torch.testing.assert_close(result['inputs'], theirs(batch(sizes))['inputs'], rtol=0, atol=0)
    assert result['data_samples'] is data['data_samples']
