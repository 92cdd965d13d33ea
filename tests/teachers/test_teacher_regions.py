"""Teacher image paths: encode_image against open_clip directly, encode_regions against manual
crops, multi-scale ensembling, batching and chunking, frozen eval mode."""
import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import OpenCLIPTeacher


@pytest.fixture
def teacher(tiny_clip_cfg):
    torch.manual_seed(0)
    return OpenCLIPTeacher(model_cfg=tiny_clip_cfg, region_batch_size=2)


def random_images(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 255


def test_encode_image_is_normalised_clip_on_normalised_pixels(teacher):
    images = random_images(3, 3, 32, 32)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        expected = F.normalize(teacher.model.encode_image((images - mean) / std), dim=-1)
    torch.testing.assert_close(teacher.encode_image(images), expected)
    other_size = teacher.encode_image(random_images(2, 3, 50, 70))
    assert other_size.shape == (2, 32)
    torch.testing.assert_close(other_size.norm(dim=-1), torch.ones(2))


def test_region_of_tower_size_equals_the_crop(teacher):
    image = random_images(1, 3, 80, 96)
    box = torch.tensor([[10.0, 20.0, 42.0, 52.0]])  # 32 x 32 px, the tower's input size
    (got,) = teacher.encode_regions(image, [box])
    expected = teacher.encode_image(image[:, :, 20:52, 10:42])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_region_twice_the_tower_size_equals_the_crop_averaged_2x2(teacher):
    image = random_images(1, 3, 80, 96)
    box = torch.tensor([[8.0, 4.0, 72.0, 68.0]])  # 64 x 64 px
    (got,) = teacher.encode_regions(image, [box])
    expected = teacher.encode_image(F.avg_pool2d(image[:, :, 4:68, 8:72], 2))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_scales_enlarge_about_the_centre_and_are_summed(teacher):
    image = random_images(1, 3, 80, 96)
    box = torch.tensor([[30.0, 20.0, 50.0, 40.0]])         # centre (40, 30), 20 x 20
    enlarged = torch.tensor([[25.0, 15.0, 55.0, 45.0]])    # the same box 1.5 times larger
    (at_1,) = teacher.encode_regions(image, [box])
    (at_15,) = teacher.encode_regions(image, [box], scales=(1.5,))
    torch.testing.assert_close(at_15, teacher.encode_regions(image, [enlarged])[0])
    (both,) = teacher.encode_regions(image, [box], scales=(1.0, 1.5))
    torch.testing.assert_close(both, F.normalize(at_1 + at_15, dim=-1))


def test_enlarged_boxes_are_clipped_to_the_image(teacher):
    """A 1.5x box reaching past the border crops only image content: the crop of the box
    cut at the border (computed by hand here), not black padding."""
    image = random_images(1, 3, 80, 96)
    box = torch.tensor([[0.0, 60.0, 20.0, 80.0]])          # at the bottom-left corner
    (at_15,) = teacher.encode_regions(image, [box], scales=(1.5,))
    clipped = torch.tensor([[0.0, 55.0, 25.0, 80.0]])      # (-5, 55, 25, 85) cut at the image
    torch.testing.assert_close(at_15, teacher.encode_regions(image, [clipped])[0])
    dense_15 = teacher.encode_regions_dense(image, [box], scales=(1.5,))[0]
    torch.testing.assert_close(dense_15, teacher.encode_regions_dense(image, [clipped])[0])


def test_batches_of_images_and_chunks_of_boxes(teacher):
    images = random_images(3, 3, 64, 64, seed=1)
    boxes = [torch.tensor([[0.0, 0.0, 32.0, 32.0], [10.0, 5.0, 60.0, 40.0],
                           [3.0, 3.0, 20.0, 50.0]]),
             torch.zeros(0, 4),
             torch.tensor([[16.0, 16.0, 48.0, 48.0]])]
    out = teacher.encode_regions(images, boxes)  # 4 boxes in chunks of 2 (region_batch_size)
    assert [tuple(o.shape) for o in out] == [(3, 32), (0, 32), (1, 32)]
    for image, image_boxes, embeddings in zip(images, boxes, out):
        for box, embedding in zip(image_boxes, embeddings):
            (alone,) = teacher.encode_regions(image[None], [box[None]])
            torch.testing.assert_close(embedding[None], alone, atol=1e-5, rtol=1e-5)


def test_frozen_and_without_gradient(teacher):
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not teacher.train().training and not teacher.model.training
    images = random_images(1, 3, 32, 32).requires_grad_(True)
    out = teacher.encode_regions(images, [torch.tensor([[0.0, 0.0, 16.0, 16.0]])])[0]
    assert out.grad_fn is None and teacher.encode_text(['a star']).grad_fn is None


def test_bad_inputs_are_named(teacher):
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        teacher.encode_image(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match='2 images but 1 box tensors'):
        teacher.encode_regions(torch.zeros(2, 3, 32, 32), [torch.zeros(0, 4)])
    with pytest.raises(ValueError, match=r'boxes\[0\] must be \(N, 4\)'):
        teacher.encode_regions(torch.zeros(1, 3, 32, 32), [torch.zeros(2, 5)])
    with pytest.raises(TypeError, match='list of strings'):
        teacher.encode_text('a star')
