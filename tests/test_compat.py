"""Tests of vlkd.compat: mmcv ops without a compiled mmcv, and checkpoint loading.

Every op is compared with an independent reference written here in numpy / plain python
(or, for the deformable convolutions, with ``torch.nn.functional.conv2d``).
"""
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vlkd  # noqa: F401  (installs the compat layer)
from vlkd import compat

mmcv_ops = pytest.importorskip('mmcv.ops')

needs_stand_in = pytest.mark.skipif(compat.has_compiled_mmcv_ops(),
                                    reason='a compiled mmcv._ext is installed')


# ------------------------------------------------------------------------------------------
# install()


@needs_stand_in
def test_install_registers_one_stand_in_and_is_idempotent():
    stand_in = sys.modules['mmcv._ext']
    globals_before = len(torch.serialization.get_safe_globals())
    compat.install()
    compat.install()
    assert sys.modules['mmcv._ext'] is stand_in
    assert stand_in.__file__ == compat.__file__
    assert len(torch.serialization.get_safe_globals()) == globals_before


def test_mmdet_and_mmseg_models_import():
    import mmdet.apis  # noqa: F401
    import mmdet.models
    import mmseg.models
    import mmseg.utils  # noqa: F401
    assert mmdet.models.FasterRCNN is not None
    assert mmseg.models.EncoderDecoder is not None


def test_install_leaves_a_compiled_ext_alone(tmp_path):
    """With a (fake) compiled mmcv._ext on the path, importing vlkd registers nothing."""
    fake_mmcv = tmp_path / 'mmcv'
    fake_mmcv.mkdir()
    (fake_mmcv / '__init__.py').write_text('')
    (fake_mmcv / '_ext.py').write_text('COMPILED = True\n')
    code = ('import sys, vlkd\n'
            "assert 'mmcv._ext' not in sys.modules\n"
            'import mmcv._ext\n'
            'assert mmcv._ext.COMPILED\n')
    # the fake first; then the repository and whatever the suite's own PYTHONPATH holds
    # (packages installed there rather than in site-packages)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(Path(vlkd.__file__).parents[1])]
        + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@needs_stand_in
@pytest.mark.parametrize('call, op', [
    (lambda: mmcv_ops.nms_match(torch.rand(3, 5), 0.5), 'nms_match'),
    (lambda: mmcv_ops.CARAFE(3, 1, 2)(torch.rand(1, 2, 4, 4), torch.rand(1, 9, 8, 8)),
     'carafe'),
    (lambda: mmcv_ops.soft_nms(torch.rand(3, 4), torch.rand(3)), 'softnms'),
    (lambda: mmcv_ops.RoIAlign(2, pool_mode='max')(torch.rand(1, 1, 4, 4),
                                                   torch.tensor([[0., 0, 0, 3, 3]])),
     "pool_mode='max'"),
])
def test_unsupported_op_names_itself_when_called(call, op):
    with pytest.raises(compat.MissingCompiledOpError) as error:
        call()
    message = str(error.value)
    assert op in message
    assert 'compiled mmcv' in message and 'config without this op' in message


# ------------------------------------------------------------------------------------------
# NMS


def reference_iou(a, b, offset=0):
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
    inter = inter_w * inter_h
    area_a = (a[2] - a[0] + offset) * (a[3] - a[1] + offset)
    area_b = (b[2] - b[0] + offset) * (b[3] - b[1] + offset)
    return inter / (area_a + area_b - inter)


def reference_nms(boxes, scores, iou_threshold, offset=0):
    """Greedy NMS: visit boxes by decreasing score; a box is dropped when its IoU with an
    already kept box is strictly greater than the threshold."""
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(reference_iou(boxes[i], boxes[k], offset) <= iou_threshold for k in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def random_boxes(n, rng, low=-10, high=60):
    """Integer-corner boxes, some partly outside a 50x50 image (exact IoU arithmetic)."""
    xy = rng.integers(low, high, size=(n, 2))
    wh = rng.integers(1, 25, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.parametrize('iou_threshold', [0.1, 0.3, 0.5, 0.7])
def test_nms_matches_greedy_reference(iou_threshold):
    rng = np.random.default_rng(0)
    boxes = random_boxes(60, rng)
    scores = rng.permutation(60).astype(np.float32) / 60  # distinct scores
    dets, keep = mmcv_ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou_threshold)
    expected = reference_nms(boxes, scores, iou_threshold)
    np.testing.assert_array_equal(keep.numpy(), expected)
    np.testing.assert_array_equal(
        dets.numpy(), np.concatenate([boxes[expected], scores[expected, None]], axis=1))
    # numpy in, numpy out
    dets_np, keep_np = mmcv_ops.nms(boxes, scores, iou_threshold)
    assert isinstance(keep_np, np.ndarray)
    np.testing.assert_array_equal(keep_np, expected)


def test_nms_offset_one_and_score_threshold_and_max_num():
    rng = np.random.default_rng(1)
    boxes = random_boxes(40, rng)
    scores = rng.permutation(40).astype(np.float32) / 40
    _, keep = mmcv_ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.3, offset=1)
    np.testing.assert_array_equal(keep.numpy(), reference_nms(boxes, scores, 0.3, offset=1))

    _, keep = mmcv_ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.3,
                           score_threshold=0.5, max_num=4)
    above = np.flatnonzero(scores > 0.5)
    expected = above[reference_nms(boxes[above], scores[above], 0.3)][:4]
    np.testing.assert_array_equal(keep.numpy(), expected)


def test_nms_iou_threshold_boundary_is_strict():
    # IoU of these two boxes is exactly 2 / 4 = 0.5
    boxes = torch.tensor([[0., 0, 3, 1], [1, 0, 4, 1]])
    scores = torch.tensor([0.9, 0.8])
    assert reference_iou(boxes[0].tolist(), boxes[1].tolist()) == 0.5
    assert mmcv_ops.nms(boxes, scores, 0.5)[1].tolist() == [0, 1]
    assert mmcv_ops.nms(boxes, scores, 0.49)[1].tolist() == [0]
    # IoU 2 / 5: 0.4 is not a binary fraction; mmcv's kernel compares float32(IoU) with
    # float32(threshold), so an IoU of exactly 0.4 is not above a 0.4 threshold
    boxes = torch.tensor([[0., 0, 3, 1], [1, 0, 5, 1]])
    assert mmcv_ops.nms(boxes, scores, 0.4)[1].tolist() == [0, 1]
    assert mmcv_ops.nms(boxes, scores, 0.39)[1].tolist() == [0]


def test_nms_empty_input():
    # (mmcv's batched_nms itself fails on empty input; mmdet checks for that before calling)
    dets, keep = mmcv_ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert dets.shape == (0, 5) and keep.shape == (0,)


def test_nms_ties_are_unordered_but_complete():
    """Equal scores: the order among tied boxes is not specified (neither mmcv's kernel nor
    torchvision's sorts stably), so only the kept set and the count are asserted."""
    boxes = torch.tensor([[0., 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                          [0, 0, 10, 10.5]])
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5])
    dets, keep = mmcv_ops.nms(boxes, scores, 0.5)
    kept = set(keep.tolist())
    assert len(keep) == 3
    assert {1, 2} <= kept and len(kept & {0, 3}) == 1  # exactly one of the overlapping pair
    assert torch.equal(dets[:, :4], boxes[keep])


def test_batched_nms_is_class_aware():
    rng = np.random.default_rng(2)
    boxes = random_boxes(80, rng, low=0, high=30)  # crowded, so classes overlap a lot
    scores = rng.permutation(80).astype(np.float32) / 80
    labels = rng.integers(0, 3, size=80)
    dets, keep = mmcv_ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                      torch.from_numpy(labels),
                                      dict(type='nms', iou_threshold=0.4))
    kept = []
    for label in range(3):
        members = np.flatnonzero(labels == label)
        kept += members[reference_nms(boxes[members], scores[members], 0.4)].tolist()
    expected = np.array(sorted(kept, key=lambda i: -scores[i]))
    np.testing.assert_array_equal(keep.numpy(), expected)
    np.testing.assert_array_equal(
        dets.numpy(), np.concatenate([boxes[expected], scores[expected, None]], axis=1))
    # class-agnostic NMS keeps fewer boxes than class-aware NMS here
    _, agnostic = mmcv_ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                       torch.from_numpy(labels),
                                       dict(type='nms', iou_threshold=0.4),
                                       class_agnostic=True)
    np.testing.assert_array_equal(agnostic.numpy(), reference_nms(boxes, scores, 0.4))
    assert len(agnostic) < len(keep)


# ------------------------------------------------------------------------------------------
# RoIAlign


def reference_bilinear(plane, y, x):
    """mmcv / Detectron bilinear sample of a (H, W) plane; 0 outside [-1, H] x [-1, W]."""
    height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * plane[y0, x0] + (1 - ly) * lx * plane[y0, x1] +
            ly * (1 - lx) * plane[y1, x0] + ly * lx * plane[y1, x1])


def reference_roi_align(features, rois, out_size, spatial_scale, sampling_ratio, aligned):
    """Average of bilinear samples on a regular grid in each output bin.

    aligned=True shifts the scaled roi by -0.5 pixel; aligned=False makes the roi at
    least 1x1. sampling_ratio > 0: that many samples per bin side; 0: ceil(roi / out).
    """
    out_h, out_w = out_size
    output = np.zeros((len(rois), features.shape[1], out_h, out_w))
    shift = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        x1, y1 = x1 * spatial_scale - shift, y1 * spatial_scale - shift
        roi_w, roi_h = x2 * spatial_scale - shift - x1, y2 * spatial_scale - shift - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(grid_h * grid_w, 1)
        for c in range(features.shape[1]):
            plane = features[int(b), c]
            for ph in range(out_h):
                for pw in range(out_w):
                    total = 0.0
                    for iy in range(grid_h):
                        y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                            total += reference_bilinear(plane, y, x)
                    output[r, c, ph, pw] = total / count
    return output


def roi_align_inputs(rng, spatial_scale):
    """A (2, 3, 9, 11) feature map and rois in image coordinates (feature / spatial_scale)."""
    features = rng.standard_normal((2, 3, 9, 11))
    rois_on_features = np.array([
        [0, 1.3, 2.2, 6.7, 7.9],
        [1, 0.0, 0.0, 11.0, 9.0],  # the whole map
        [1, -3.0, -2.5, 4.2, 3.1],  # partly outside
        [0, 8.5, 6.0, 14.0, 12.5],  # partly outside, beyond the far border
        [1, 12.5, 10.5, 15.0, 14.0],  # entirely outside
        [0, 5.0, 4.0, 5.3, 4.2],  # smaller than a pixel
    ])
    return features, rois_on_features * [1, *[1 / spatial_scale] * 4]


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('spatial_scale', [1.0, 0.5, 0.25])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_roi_align_matches_reference(aligned, spatial_scale, sampling_ratio):
    rng = np.random.default_rng(3)
    features, rois = roi_align_inputs(rng, spatial_scale)
    expected = reference_roi_align(features, rois, (3, 4), spatial_scale, sampling_ratio,
                                   aligned)
    layer = mmcv_ops.RoIAlign((3, 4), spatial_scale, sampling_ratio, aligned=aligned)
    out = layer(torch.from_numpy(features).float(), torch.from_numpy(rois).float())
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    out = mmcv_ops.roi_align(torch.from_numpy(features), torch.from_numpy(rois), (3, 4),
                             spatial_scale, sampling_ratio, 'avg', aligned)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-10)


def test_roi_align_empty_rois():
    features = torch.rand(1, 2, 5, 5, requires_grad=True)
    out = mmcv_ops.RoIAlign(2)(features, torch.zeros(0, 5))
    assert out.shape == (0, 2, 2, 2)
    out.sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_gradient(aligned):
    features = torch.rand(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.7, 1.2, 4.1, 3.9], [1, -1.0, 2.0, 3.0, 6.5]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: mmcv_ops.roi_align(x, rois, (2, 3), 1.0, 0, 'avg', aligned), (features,))
    # and the adjoint of the reference: roi_align is linear, so d<out, g>/dx = A^T g
    grad_out = np.random.default_rng(4).standard_normal((2, 2, 2, 3))
    mmcv_ops.roi_align(features, rois, (2, 3), 1.0, 0, 'avg', aligned).backward(
        torch.from_numpy(grad_out))
    x0 = features.detach().numpy()
    numeric = np.zeros_like(x0)
    for index in np.ndindex(*x0.shape):
        unit = np.zeros_like(x0)
        unit[index] = 1.0
        numeric[index] = (reference_roi_align(unit, rois.numpy(), (2, 3), 1.0, 0, aligned) *
                          grad_out).sum()
    np.testing.assert_allclose(features.grad.numpy(), numeric, atol=1e-12)


def test_mask_target_roi_align_of_mmdet_uses_the_stand_in():
    """mmdet's BitmapMasks.crop_and_resize binds mmcv's roi_align at import."""
    from mmdet.structures.mask import BitmapMasks
    masks = np.zeros((1, 8, 8), dtype=np.uint8)
    masks[0, 2:6, 2:6] = 1
    resized = BitmapMasks(masks, 8, 8).crop_and_resize(
        torch.tensor([[2., 2., 6., 6.]]), (4, 4), torch.tensor([0]))
    assert resized.masks.shape == (1, 4, 4) and resized.masks.all()


# ------------------------------------------------------------------------------------------
# RoIPool


def round_half_away(value):
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def reference_roi_pool(features, rois, out_size, spatial_scale):
    """Max over each bin. Quantisation (torchvision / Caffe Fast R-CNN): roi corners are
    scaled and rounded half away from zero; the roi spans end - start + 1 cells (at least
    1); bin i covers cells [floor(i * size / n), ceil((i + 1) * size / n)) from the roi
    start, clipped to the map; an empty bin gives 0."""
    out_h, out_w = out_size
    height, width = features.shape[2:]
    output = np.zeros((len(rois), features.shape[1], out_h, out_w))
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        start_x, start_y = round_half_away(x1 * spatial_scale), round_half_away(y1 * spatial_scale)
        end_x, end_y = round_half_away(x2 * spatial_scale), round_half_away(y2 * spatial_scale)
        roi_w, roi_h = max(end_x - start_x + 1, 1), max(end_y - start_y + 1, 1)
        for ph in range(out_h):
            top = min(max(math.floor(ph * roi_h / out_h) + start_y, 0), height)
            bottom = min(max(math.ceil((ph + 1) * roi_h / out_h) + start_y, 0), height)
            for pw in range(out_w):
                left = min(max(math.floor(pw * roi_w / out_w) + start_x, 0), width)
                right = min(max(math.ceil((pw + 1) * roi_w / out_w) + start_x, 0), width)
                if bottom > top and right > left:
                    output[r, :, ph, pw] = features[int(b), :, top:bottom,
                                                    left:right].max(axis=(1, 2))
    return output


@pytest.mark.parametrize('spatial_scale', [1.0, 0.5])
def test_roi_pool_matches_reference(spatial_scale):
    rng = np.random.default_rng(5)
    features = rng.standard_normal((2, 3, 10, 12))
    rois = np.array([[0, 1.2, 2.1, 8.7, 7.2], [1, 0, 0, 23, 19], [1, -4, -3, 5, 4.4],
                     [0, 18.6, 14.2, 30, 30], [1, 3, 3, 3.2, 3.1], [0, 40, 40, 50, 50]])
    expected = reference_roi_pool(features, rois, (3, 2), spatial_scale)
    out = mmcv_ops.RoIPool((3, 2), spatial_scale)(torch.from_numpy(features),
                                                  torch.from_numpy(rois))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


def test_roi_pool_gradient_goes_to_the_max_of_each_bin():
    rng = np.random.default_rng(6)
    features = torch.from_numpy(rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) /
                                10.0).requires_grad_()
    rois = torch.tensor([[1, 0.0, 0.0, 4.0, 5.0], [0, 1.0, 2.0, 5.0, 5.0]],
                        dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: mmcv_ops.roi_pool(x, rois, (2, 2), 1.0),
                                    (features,), eps=1e-3)


# ------------------------------------------------------------------------------------------
# Deformable convolutions


def shifted_conv(x, weight, dy, dx, stride, padding, dilation, groups):
    """A convolution whose every sampling point is moved by the integers (dy, dx)."""
    margin = padding + max(abs(dy), abs(dx))
    big = F.pad(x, (margin,) * 4)
    out_h = (x.shape[2] + 2 * padding - dilation * (weight.shape[2] - 1) - 1) // stride + 1
    out_w = (x.shape[3] + 2 * padding - dilation * (weight.shape[3] - 1) - 1) // stride + 1
    top, left = margin - padding + dy, margin - padding + dx
    out = F.conv2d(big[:, :, top:, left:], weight, stride=stride, dilation=dilation,
                   groups=groups)
    return out[:, :, :out_h, :out_w]


@pytest.mark.parametrize('stride, padding, dilation, groups', [(1, 1, 1, 1), (2, 2, 2, 2)])
@pytest.mark.parametrize('dy, dx', [(0, 0), (1, -2)])
def test_deform_conv_with_integer_offsets_is_a_shifted_conv(stride, padding, dilation, groups,
                                                            dy, dx):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8)
    layer = mmcv_ops.DeformConv2d(4, 6, 3, stride, padding, dilation, groups, deform_groups=2)
    out_h = (9 + 2 * padding - 2 * dilation - 1) // stride + 1
    out_w = (8 + 2 * padding - 2 * dilation - 1) // stride + 1
    offset = torch.zeros(2, 2 * 2 * 9, out_h, out_w)
    offset[:, 0::2], offset[:, 1::2] = dy, dx  # layout (y0, x0, y1, x1, ...)
    expected = shifted_conv(x, layer.weight, dy, dx, stride, padding, dilation, groups)
    torch.testing.assert_close(layer(x, offset), expected, atol=1e-5, rtol=1e-5)

    modulated = mmcv_ops.ModulatedDeformConv2d(4, 6, 3, stride, padding, dilation, groups,
                                               deform_groups=2)
    mask = torch.full((2, 2 * 9, out_h, out_w), 0.5)
    expected = 0.5 * shifted_conv(x, modulated.weight, dy, dx, stride, padding, dilation,
                                  groups) + modulated.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(modulated(x, offset, mask), expected, atol=1e-5, rtol=1e-5)


def test_deform_conv_gradients():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    offset = (0.7 * torch.randn(1, 18, 5, 5, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(1, 9, 5, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, o, w: mmcv_ops.deform_conv2d(x, o, w, 1, 1), (x, offset, weight))
    assert torch.autograd.gradcheck(
        lambda x, o, m, w, b: mmcv_ops.modulated_deform_conv2d(x, o, m, w, b, 1, 1),
        (x, offset, mask, weight, bias))


# ------------------------------------------------------------------------------------------
# Pure-PyTorch routes of the kernels mmdet / mmseg / mmcv call on CUDA


def reference_sigmoid_focal_loss(logits, labels, gamma, alpha):
    """Elementwise focal loss (N, C); label C (background) makes every class a negative."""
    prob = 1 / (1 + np.exp(-logits))
    positive = labels[:, None] == np.arange(logits.shape[1])[None]
    pos = -alpha * (1 - prob) ** gamma * np.log(prob)
    neg = -(1 - alpha) * prob ** gamma * np.log(1 - prob)
    return np.where(positive, pos, neg)


def test_mmdet_focal_loss_on_both_paths_matches_formula():
    from mmdet.models.losses import FocalLoss
    from mmdet.models.losses.focal_loss import sigmoid_focal_loss
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((12, 5)) * 2
    labels = rng.integers(0, 6, size=12)  # 5 = background
    expected = reference_sigmoid_focal_loss(logits, labels, 2.0, 0.25)

    pred = torch.tensor(logits, requires_grad=True)
    loss = FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)(
        pred, torch.from_numpy(labels))  # CPU: mmdet's py_sigmoid_focal_loss
    np.testing.assert_allclose(loss.item(), expected.mean(), rtol=1e-10)
    loss.backward()
    cpu_grad = pred.grad.clone()

    # the function FocalLoss calls for CUDA inputs, run here on CPU
    pred.grad = None
    cuda_route = sigmoid_focal_loss(pred, torch.from_numpy(labels), gamma=2.0, alpha=0.25)
    np.testing.assert_allclose(cuda_route.item(), expected.mean(), rtol=1e-10)
    cuda_route.backward()
    torch.testing.assert_close(pred.grad, cpu_grad)


def test_mmseg_focal_loss_cuda_route_matches_formula():
    from mmseg.models.losses.focal_loss import sigmoid_focal_loss
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((10, 4))
    labels = rng.integers(0, 4, size=10)
    one_hot = np.eye(5)[labels][:, :4]
    loss = sigmoid_focal_loss(torch.tensor(logits), torch.from_numpy(labels),
                              torch.from_numpy(one_hot), gamma=2.0, alpha=0.5,
                              reduction='sum')
    expected = reference_sigmoid_focal_loss(logits, labels, 2.0, 0.5).sum()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-10)


def test_multi_scale_deformable_attention_kernel_is_the_pytorch_path():
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    torch.manual_seed(2)
    shapes = torch.tensor([[4, 5], [2, 3]])
    starts = torch.tensor([0, 20])
    value = torch.randn(2, 26, 2, 3, dtype=torch.float64, requires_grad=True)
    locations = torch.rand(2, 7, 2, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 7, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    kernel = MultiScaleDeformableAttnFunction.apply(value, shapes, starts, locations, weights,
                                                    64)
    pure = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    torch.testing.assert_close(kernel, pure)
    grad_out = torch.randn_like(pure)
    kernel_grads = torch.autograd.grad(kernel, (value, locations, weights), grad_out)
    pure_grads = torch.autograd.grad(pure, (value, locations, weights), grad_out)
    for a, b in zip(kernel_grads, pure_grads):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------
# Checkpoints


def build_runner(work_dir, max_iters, **kwargs):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Regressor(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, targets=None, mode='tensor'):
            out = self.linear(inputs).squeeze(-1)
            if mode == 'loss':
                return {'loss': ((out - targets)**2).mean()}
            return out

    class Points(torch.utils.data.Dataset):
        # numpy values in the metainfo end up in the checkpoint's meta
        metainfo = dict(classes=('a', 'b'), scale=np.float32(0.5), ids=np.arange(3))

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(inputs=torch.tensor([i / 8, 1.0]), targets=torch.tensor(i / 4))

    return Runner(
        model=Regressor(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=Points(), sampler=dict(type='DefaultSampler'),
                              batch_size=2, collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False, milestones=[1]),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), **kwargs)


class NotAllowlisted:

    def __init__(self, note):
        self.note = note


class LooksUpAnAttribute:

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, 'register_statistics')


def test_mmengine_checkpoints_load_and_resume(tmp_path):
    from mmengine.runner import load_checkpoint
    runner = build_runner(tmp_path / 'first', max_iters=2)
    runner.train()
    checkpoint = tmp_path / 'first' / 'iter_2.pth'
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:  # without vlkd's allow-list, torch's default loader refuses this file
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint))
        with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
            load_checkpoint(torch.nn.Linear(2, 1), str(checkpoint))
    finally:
        torch.serialization.add_safe_globals(allowed)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in needed
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint)) == []

    model = build_runner(tmp_path / 'load', max_iters=2).model
    load_checkpoint(model, str(checkpoint))
    for name, value in runner.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name

    resumed = build_runner(tmp_path / 'resumed', max_iters=3, load_from=str(checkpoint),
                           resume=True)
    resumed.train()
    assert resumed.iter == 3
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) == 3  # 2 resumed + 1


def test_checkpoints_with_other_globals_are_still_refused(tmp_path):
    from mmengine.runner import load_checkpoint
    model = torch.nn.Linear(2, 1)
    unknown_class = tmp_path / 'unknown_class.pth'
    torch.save({'state_dict': model.state_dict(), 'extra': NotAllowlisted('x')}, unknown_class)
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        load_checkpoint(model, str(unknown_class))

    attribute_lookup = tmp_path / 'attribute_lookup.pth'
    torch.save({'state_dict': model.state_dict(), 'extra': LooksUpAnAttribute()},
               attribute_lookup)
    with pytest.raises(pickle.UnpicklingError, match='Refusing getattr'):
        torch.load(attribute_lookup)
