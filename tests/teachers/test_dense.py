"""Dense teacher embeddings: MaskCLIP on open_clip ViTs and ResNets against forward passes
written here from the weights (float64), against open_clip's own block with self-only
attention, and the cases where dense and global embeddings must (and must not) agree."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from vlkd.teachers import OpenCLIPTeacher

VIT_CFG = dict(embed_dim=24,
               vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16),
               text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
# the quickstart teacher's image tower (configs/pretrain/clip_shapes_tiny.py), smaller text
RESNET_CFG = dict(embed_dim=24,
                  vision_cfg=dict(image_size=32, layers=[1, 1, 1, 1], width=32, head_width=32),
                  text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2,
                                layers=1))


def make_teacher(cfg, seed=0):
    torch.manual_seed(seed)
    teacher = OpenCLIPTeacher(model_cfg=copy.deepcopy(cfg))
    for param in teacher.parameters():  # away from open_clip's init (zero biases, ...)
        param.data.add_(0.05 * torch.randn_like(param))
    teacher._fingerprint = None
    return teacher


def random_images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 255


def normalised_pixels(teacher, images):
    return (images - teacher.pixel_mean) / teacher.pixel_std


def layer_norm(x, module):
    """LayerNorm written out, float64."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + module.eps) * module.weight.double() \
        + module.bias.double()


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def last_block_input(visual, pixels):
    """The tokens (B, 1 + N, C) entering the last ViT block in open_clip's own forward."""
    seen = {}
    hook = visual.transformer.resblocks[-1].register_forward_pre_hook(
        lambda module, args: seen.setdefault('x', args[0]))
    with torch.no_grad():
        visual(pixels)
    hook.remove()
    return seen['x']


def test_vit_dense_is_maskclip_computed_from_the_weights():
    teacher = make_teacher(VIT_CFG)
    visual = teacher.model.visual
    images = random_images(2, 3, 32, 32)
    x = last_block_input(visual, normalised_pixels(teacher, images)).double()
    block = visual.transformer.resblocks[-1]
    width = x.shape[-1]
    w_in, b_in = block.attn.in_proj_weight.double(), block.attn.in_proj_bias.double()
    normed = layer_norm(x, block.ln_1)
    keys = normed @ w_in[width:2 * width].T + b_in[width:2 * width]
    values = normed @ w_in[2 * width:].T + b_in[2 * width:]
    # self-only attention: the output of a token is the out-projection of its own value
    x = x + values @ block.attn.out_proj.weight.double().T + block.attn.out_proj.bias.double()
    hidden = gelu(layer_norm(x, block.ln_2) @ block.mlp.c_fc.weight.double().T
                  + block.mlp.c_fc.bias.double())
    x = x + hidden @ block.mlp.c_proj.weight.double().T + block.mlp.c_proj.bias.double()
    embedded = layer_norm(x[:, 1:], visual.ln_post) @ visual.proj.double()  # (B, 16, D)
    expected = F.normalize(embedded, dim=-1).transpose(1, 2).reshape(2, 24, 4, 4)

    dense, got_keys = teacher.encode_dense(images, return_keys=True)
    assert dense.shape == (2, 24, 4, 4)
    torch.testing.assert_close(dense.double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_keys.double(),
                               keys[:, 1:].transpose(1, 2).reshape(2, width, 4, 4),
                               atol=1e-5, rtol=1e-5)
    # patch (row 1, column 2) is token 1 * 4 + 2
    torch.testing.assert_close(dense[1, :, 1, 2].double(),
                               F.normalize(embedded[1, 6], dim=0), atol=1e-5, rtol=1e-5)


def test_vit_dense_is_the_last_block_with_self_only_attention():
    """open_clip's own last block, told by an attention mask that every token may only
    attend to itself, gives the MaskCLIP tokens."""
    teacher = make_teacher(VIT_CFG, seed=1)
    visual = teacher.model.visual
    images = random_images(1, 3, 32, 32, seed=1)
    x = last_block_input(visual, normalised_pixels(teacher, images))
    self_only = torch.full((17, 17), float('-inf')).fill_diagonal_(0.0)
    with torch.no_grad():
        tokens = visual.transformer.resblocks[-1](x, attn_mask=self_only)
        expected = F.normalize(visual.ln_post(tokens[:, 1:]) @ visual.proj, dim=-1)
    dense = teacher.encode_dense(images)
    torch.testing.assert_close(dense.flatten(2).transpose(1, 2), expected, atol=1e-5,
                               rtol=1e-5)
    # the full attention gives other tokens: the modification matters
    with torch.no_grad():
        attended = visual.transformer.resblocks[-1](x)
        regular = F.normalize(visual.ln_post(attended[:, 1:]) @ visual.proj, dim=-1)
    assert (regular - expected).abs().max() > 1e-2


def test_vit_dense_mean_is_not_the_global_embedding():
    teacher = make_teacher(VIT_CFG, seed=2)
    images = random_images(2, 3, 32, 32, seed=2)
    pooled = F.normalize(teacher.encode_dense(images).mean(dim=(2, 3)), dim=-1)
    cosine = (pooled * teacher.encode_image(images)).sum(-1)
    assert (cosine < 0.999).all()


def test_one_patch_whose_class_token_equals_it_gives_the_global_embedding():
    """A 1-patch ViT whose [CLS] input equals the patch input: both tokens stay equal through
    every block, attention cannot mix anything, and the dense map (1 x 1) is the global
    embedding. With the original [CLS] embedding the two differ."""
    cfg = copy.deepcopy(VIT_CFG)
    cfg['vision_cfg'].update(image_size=16, patch_size=16)
    teacher = make_teacher(cfg, seed=3)
    visual = teacher.model.visual
    images = random_images(1, 3, 16, 16, seed=3)
    dense = teacher.encode_dense(images)
    assert dense.shape == (1, 24, 1, 1)
    assert (dense[:, :, 0, 0] - teacher.encode_image(images)).abs().max() > 1e-3
    with torch.no_grad():
        patch = visual.conv1(normalised_pixels(teacher, images)).flatten()
        visual.class_embedding.copy_(patch + visual.positional_embedding[1]
                                     - visual.positional_embedding[0])
    torch.testing.assert_close(teacher.encode_dense(images)[:, :, 0, 0],
                               teacher.encode_image(images), atol=1e-5, rtol=1e-5)


def test_vit_dense_at_other_sizes_resizes_positions_and_rounds_to_patches():
    teacher = make_teacher(VIT_CFG, seed=4)
    images = random_images(1, 3, 44, 60, seed=4)
    assert teacher.encode_dense(images).shape == (1, 24, 6, 8)  # 48 x 64 px: 6 x 8 patches
    assert teacher.encode_dense(images, size=(16, 24)).shape == (1, 24, 2, 3)
    # at the tower's own size, the positional embeddings are used unchanged
    from vlkd.teachers.dense import resize_positions
    positions = teacher.model.visual.positional_embedding
    assert resize_positions(positions, (4, 4), (4, 4)) is positions
    resized = resize_positions(positions, (4, 4), (2, 3))
    torch.testing.assert_close(resized[0], positions[0])
    grid = positions[1:].T.reshape(1, -1, 4, 4)
    torch.testing.assert_close(resized[1:].T.reshape(1, -1, 2, 3),
                               F.interpolate(grid, size=(2, 3), mode='bicubic'))


def resnet_features(visual, pixels):
    """The ResNet trunk's last feature map (B, C, h, w)."""
    with torch.no_grad():
        x = visual.stem(pixels)
        for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = stage(x)
    return x


def test_resnet_dense_is_the_attention_pool_value_path_at_every_location():
    teacher = make_teacher(RESNET_CFG)
    pool = teacher.model.visual.attnpool
    images = random_images(2, 3, 64, 96)
    x = resnet_features(teacher.model.visual, normalised_pixels(teacher, images)).double()
    assert x.shape[-2:] == (2, 3)
    expected = torch.zeros(2, 24, 2, 3, dtype=torch.float64)
    keys = torch.zeros(2, x.shape[1], 2, 3, dtype=torch.float64)
    for b in range(2):
        for i in range(2):
            for j in range(3):
                value = pool.v_proj.weight.double() @ x[b, :, i, j] + pool.v_proj.bias.double()
                out = pool.c_proj.weight.double() @ value + pool.c_proj.bias.double()
                expected[b, :, i, j] = out / out.norm()
                keys[b, :, i, j] = pool.k_proj.weight.double() @ x[b, :, i, j] \
                    + pool.k_proj.bias.double()
    dense, got_keys = teacher.encode_dense(images, return_keys=True)
    torch.testing.assert_close(dense.double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_keys.double(), keys, atol=1e-4, rtol=1e-5)


def test_resnet_one_cell_without_positions_gives_the_global_embedding():
    """On a 1 x 1 feature map the attention pool's mean token is the cell itself; without
    positional embeddings every attention weight lands on equal values, so the pool's
    output is c_proj(v_proj(x)): the dense embedding. The positions make them differ."""
    teacher = make_teacher(RESNET_CFG, seed=1)
    images = random_images(2, 3, 32, 32, seed=1)
    dense = teacher.encode_dense(images)
    assert dense.shape == (2, 24, 1, 1)
    assert (dense[:, :, 0, 0] - teacher.encode_image(images)).abs().max() > 1e-3
    with torch.no_grad():
        teacher.model.visual.attnpool.positional_embedding.zero_()
    torch.testing.assert_close(teacher.encode_dense(images)[:, :, 0, 0],
                               teacher.encode_image(images), atol=1e-5, rtol=1e-5)


def test_regions_pooled_from_the_dense_map_average_their_cells():
    teacher = make_teacher(RESNET_CFG, seed=2)
    images = random_images(2, 3, 64, 96, seed=2)
    dense = teacher.encode_dense(images)  # 32 px cells, 2 x 3
    boxes = [torch.tensor([[32.0, 0.0, 96.0, 64.0], [0.0, 32.0, 32.0, 64.0]]),
             torch.tensor([[0.0, 0.0, 64.0, 32.0]])]
    got = teacher.encode_regions_dense(images, boxes)
    expected = [torch.stack([F.normalize(dense[0, :, 0:2, 1:3].mean((1, 2)), dim=0),
                             dense[0, :, 1, 0]]),
                F.normalize(dense[1, :, 0:1, 0:2].mean((1, 2)), dim=0)[None]]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    # scales enlarge about the centre; their normalised embeddings are summed
    small = [torch.tensor([[40.0, 8.0, 56.0, 24.0]]), torch.zeros(0, 4)]  # x1.5: 36..60, 4..28
    at_15 = teacher.encode_regions_dense(images, small, scales=(1.5,))[0]
    enlarged = teacher.encode_regions_dense(
        images, [torch.tensor([[36.0, 4.0, 60.0, 28.0]]), torch.zeros(0, 4)])[0]
    torch.testing.assert_close(at_15, enlarged)
    both = teacher.encode_regions_dense(images, small, scales=(1.0, 1.5))
    at_1 = teacher.encode_regions_dense(images, small)[0]
    torch.testing.assert_close(both[0], F.normalize(at_1 + at_15, dim=-1))
    assert both[1].shape == (0, 24)


def test_regions_follow_the_dense_size():
    """With ``size`` the map covers the image at another resolution: box pixels are mapped
    onto its cells (64 px image at 32 px on a 8 px-patch ViT: 16 px per cell)."""
    teacher = make_teacher(VIT_CFG, seed=5)
    images = random_images(1, 3, 64, 64, seed=5)
    dense = teacher.encode_dense(images, size=32)  # 4 x 4
    (got,) = teacher.encode_regions_dense(images, [torch.tensor([[16.0, 0.0, 48.0, 48.0]])],
                                          size=32)
    torch.testing.assert_close(got[0], F.normalize(dense[0, :, 0:3, 1:3].mean((1, 2)), dim=0),
                               atol=1e-5, rtol=1e-5)


def test_bad_dense_inputs_are_named():
    teacher = make_teacher(VIT_CFG)
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        teacher.encode_dense(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match='size must be a positive int'):
        teacher.encode_dense(torch.zeros(1, 3, 32, 32), size=(32, 0))
    with pytest.raises(ValueError, match='1 images but 2 box tensors'):
        teacher.encode_regions_dense(torch.zeros(1, 3, 32, 32), [torch.zeros(0, 4)] * 2)
