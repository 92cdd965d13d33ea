"""Adapters to the upstream stack; :func:`install` is run by ``import vlkd``.

1. **mmcv ops without a compiled mmcv.** mmcv-lite has no ``mmcv._ext``, and mmdet / mmseg
   import ``mmcv.ops`` when their models are imported. When (and only when) no compiled
   ``mmcv._ext`` is installed, a stand-in module takes its place. It implements the kernel
   functions that mmcv's own autograd Functions call, so every importer of ``mmcv.ops``
   (``batched_nms``, ``RoIAlign``, mmdet's ``roi_align`` for masks, ...) works unchanged:

   - ``nms`` and ``roi_align`` (avg mode), ``roi_pool``, ``deform_conv``,
     ``modulated_deform_conv``: torchvision's kernels (CPU and CUDA).
   - ``sigmoid_focal_loss`` and ``ms_deform_attn``: pure PyTorch (the sigmoid focal loss
     formula, mmcv's ``multi_scale_deformable_attn_pytorch``). mmdet's / mmseg's
     ``FocalLoss`` and mmcv's ``MultiScaleDeformableAttention`` call these kernels only for
     CUDA inputs; on CPU they already use the same pure formulas, so both devices compute
     the same thing and nothing compiled is needed.
   - Backward passes are vector-Jacobian products of the same functions (``torch.autograd``).
   - Every other kernel (CARAFE, MaskedConv2d, PSAMask, nms_match, soft-NMS, nms_rotated,
     RoIAlign with ``pool_mode='max'``, ...) raises :class:`MissingCompiledOpError` naming
     the op when it is called; importing its module still works.

   RoIPool follows torchvision's (Caffe Fast R-CNN) quantisation: roi corners rounded to
   the feature grid, end inclusive. mmcv's CUDA kernel does not round; mmdet configs use
   RoIAlign, so this only matters for legacy RoIPool configs.
   mmseg 1.2.2's ``FocalLoss`` on CPU is wrong for integer label maps (it selects
   ``one_hot[:, num_classes]``, mmsegmentation#3249); it is not patched here: use mmdet's
   ``FocalLoss`` or a vlkd loss instead.

2. **Checkpoints on torch >= 2.6**, where ``torch.load`` defaults to ``weights_only=True``
   and refuses mmengine's own checkpoints. The few globals that mmengine 0.10.7 writes into
   a checkpoint are added to torch's allow-list (see :func:`checkpoint_safe_globals`); they
   rebuild plain data (log history buffers, numpy scalars and arrays) and run no other
   code. A file that needs any other global is still refused by torch with its
   ``Unsupported global`` error; load it with ``weights_only=False`` only if you trust it.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import pickle
import sys
import types

import torch

__all__ = ['MissingCompiledOpError', 'checkpoint_safe_globals', 'has_compiled_mmcv_ops', 'install']

_STAND_IN_NAME = 'mmcv._ext'


class MissingCompiledOpError(NotImplementedError):
    """An mmcv op was called that needs a compiled mmcv (``mmcv._ext``)."""


def has_compiled_mmcv_ops() -> bool:
    """Whether a real compiled ``mmcv._ext`` is installed (found without importing mmcv)."""
    mmcv_spec = importlib.util.find_spec('mmcv')
    if mmcv_spec is None or not mmcv_spec.submodule_search_locations:
        return False
    found = importlib.machinery.PathFinder.find_spec(
        _STAND_IN_NAME, list(mmcv_spec.submodule_search_locations))
    return found is not None


def install() -> None:
    """Install the adapters that this environment needs; calling it again changes nothing."""
    _install_mmcv_ops()
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


# --------------------------------------------------------------------------------------
# Checkpoints

_NUMPY_DATA_TYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                     'uint64', 'float16', 'float32', 'float64', 'complex64', 'complex128')
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def checkpoint_safe_globals() -> list:
    """The globals that mmengine checkpoints contain besides tensors, for
    ``torch.serialization.add_safe_globals``.

    - ``mmengine.logging.HistoryBuffer`` (logged scalars in ``message_hub``), and
      ``builtins.getattr`` restricted to ``getattr(HistoryBuffer, 'min' | 'max' | 'current' |
      'mean')``, which is how a buffer pickles its statistics methods;
    - numpy arrays and scalars of numeric dtypes (``ndarray``, ``dtype`` and its numeric
      subclasses, the array and scalar reconstructors, under their numpy 1 and 2 names).
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    numpy_globals = [np.ndarray, np.dtype]
    numpy_globals += [type(np.dtype(name)) for name in _NUMPY_DATA_TYPES]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        numpy_globals += [(multiarray._reconstruct, f'{module}._reconstruct'),
                          (multiarray.scalar, f'{module}.scalar')]
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr')] + numpy_globals


def _history_buffer_method(owner, name):
    """``getattr`` as the unpickler may call it: only a HistoryBuffer statistics method."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: vlkd.compat only '
        'allows HistoryBuffer statistics methods. Load the file with weights_only=False only '
        'if you trust it.')


# --------------------------------------------------------------------------------------
# mmcv._ext stand-in


def _install_mmcv_ops() -> None:
    if (_STAND_IN_NAME in sys.modules or importlib.util.find_spec('mmcv') is None
            or has_compiled_mmcv_ops()):
        return
    sys.modules[_STAND_IN_NAME] = _build_stand_in()


class _StandInLoader(importlib.abc.Loader):
    """Loader of the stand-in module, which :func:`install` has already created.

    Having a loader makes ``pkgutil.find_loader('mmcv._ext')`` (mmengine's
    ``mmcv_full_available``) report the ops as present, so mmengine's optimizer
    constructor applies its DeformConv options (``dcn_offset_lr_mult``).
    """

    @staticmethod
    def create_module(spec):
        return sys.modules[spec.name]

    @staticmethod
    def exec_module(module):
        pass


def _build_stand_in() -> types.ModuleType:
    module = types.ModuleType(_STAND_IN_NAME, 'Stand-in for mmcv._ext, see vlkd.compat.')
    module.__spec__ = importlib.machinery.ModuleSpec(
        _STAND_IN_NAME, _StandInLoader(), origin=__name__)
    module.__file__ = __file__
    for name, kernel in _KERNELS.items():
        setattr(module, name, kernel)

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _missing_kernel(name)

    module.__getattr__ = __getattr__
    return module


def _missing_kernel(name):

    def kernel(*args, **kwargs):
        raise MissingCompiledOpError(_missing_message(name))

    kernel.__name__ = name
    return kernel


def _missing_message(op):
    return (f"mmcv op '{op}' needs a compiled mmcv (mmcv._ext), but only mmcv-lite is "
            'installed. vlkd provides nms, batched_nms, RoIAlign (avg), RoIPool, '
            '(Modulated)DeformConv2d, sigmoid focal loss and MultiScaleDeformableAttention '
            'without it. Use a config without this op, or install a compiled mmcv==2.1.0.')


# Kernels. Names and keyword arguments are those that mmcv 2.1.0's mmcv/ops/*.py pass to
# ext_module; output tensors are allocated by mmcv and filled in place here.


def _get_compiler_version():
    return 'none (mmcv-lite, ops from torchvision via vlkd.compat)'


def _get_compiling_cuda_version():
    return 'none (mmcv-lite, ops from torchvision via vlkd.compat)'


def _nms(boxes, scores, iou_threshold, offset=0):
    """Indices of kept boxes, by decreasing score; ``offset=1`` measures sides as x2-x1+1.

    A box is dropped when its IoU with a kept box is > ``iou_threshold``, compared in
    float32 as mmcv's kernel takes it (so an IoU of exactly 0.4 survives a 0.4 threshold).
    """
    import torchvision
    if offset:
        boxes = boxes + boxes.new_tensor([0, 0, offset, offset])
    threshold = torch.tensor(float(iou_threshold), dtype=torch.float32).item()
    return torchvision.ops.nms(boxes, scores, threshold)


def _roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width,
                       spatial_scale, sampling_ratio, pool_mode, aligned):
    _check_avg_pool_mode(pool_mode)
    output.copy_(_tv_roi_align(input, rois, aligned_height, aligned_width, spatial_scale,
                               sampling_ratio, aligned))


def _roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height,
                        aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned):
    _check_avg_pool_mode(pool_mode)
    # roi_align is linear in its input: its VJP does not depend on the input values.
    probe = torch.zeros_like(grad_input, requires_grad=True)
    with torch.enable_grad():
        pooled = _tv_roi_align(probe, rois, aligned_height, aligned_width, spatial_scale,
                               sampling_ratio, aligned)
        grad_input.copy_(torch.autograd.grad(pooled, probe, grad_output)[0])


def _tv_roi_align(input, rois, height, width, spatial_scale, sampling_ratio, aligned):
    import torchvision
    return torchvision.ops.roi_align(input, rois.to(input.dtype), (height, width),
                                     float(spatial_scale), int(sampling_ratio), bool(aligned))


def _check_avg_pool_mode(pool_mode):
    if pool_mode != 1:
        raise MissingCompiledOpError(_missing_message("roi_align with pool_mode='max'"))


def _roi_pool_forward(input, rois, output, argmax, pooled_height, pooled_width, spatial_scale):
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)
    pooled, where = torch.ops.torchvision.roi_pool(
        input, rois.to(input.dtype), float(spatial_scale), pooled_height, pooled_width)
    output.copy_(pooled)
    argmax.copy_(where)


def _roi_pool_backward(grad_output, rois, argmax, grad_input, pooled_height, pooled_width,
                       spatial_scale):
    """Add each output gradient to the input pixel that was the max of its bin."""
    num_images, channels, height, width = grad_input.shape
    plane = rois[:, 0].long().view(-1, 1, 1, 1) * channels + torch.arange(
        channels, device=rois.device).view(1, -1, 1, 1)
    flat_index = plane * (height * width) + argmax.long()
    pooled_anything = argmax >= 0
    grad_input.view(-1).index_add_(0, flat_index[pooled_anything],
                                   grad_output[pooled_anything].to(grad_input.dtype))


def _deform_conv_forward(input, weight, offset, output, columns, ones, kW, kH, dW, dH, padW,
                         padH, dilationW, dilationH, group, deformable_group, im2col_step):
    output.copy_(_tv_deform_conv(input, offset, weight, None, None, dH, dW, padH, padW,
                                 dilationH, dilationW))


def _deform_conv_backward_input(input, offset, gradOutput, gradInput, gradOffset, weight,
                                columns, kW, kH, dW, dH, padW, padH, dilationW, dilationH,
                                group, deformable_group, im2col_step):
    grads = _vjp(lambda x, o: _tv_deform_conv(x, o, weight, None, None, dH, dW, padH, padW,
                                              dilationH, dilationW),
                 (input, offset), gradOutput)
    gradInput.copy_(grads[0])
    gradOffset.copy_(grads[1])


def _deform_conv_backward_parameters(input, offset, gradOutput, gradWeight, columns, ones, kW,
                                     kH, dW, dH, padW, padH, dilationW, dilationH, group,
                                     deformable_group, scale, im2col_step):
    # The convolution is linear in its weight: the VJP does not depend on the weight values.
    grads = _vjp(lambda w: _tv_deform_conv(input, offset, w, None, None, dH, dW, padH, padW,
                                           dilationH, dilationW),
                 (torch.zeros_like(gradWeight),), gradOutput)
    gradWeight.copy_(grads[0] * scale)


def _modulated_deform_conv_forward(input, weight, bias, ones, offset, mask, output, columns,
                                   kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                   dilation_h, dilation_w, group, deformable_group, with_bias):
    output.copy_(_tv_deform_conv(input, offset, weight, bias if with_bias else None, mask,
                                 stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w))


def _modulated_deform_conv_backward(input, weight, bias, ones, offset, mask, columns,
                                    grad_input, grad_weight, grad_bias, grad_offset, grad_mask,
                                    grad_output, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                                    pad_w, dilation_h, dilation_w, group, deformable_group,
                                    with_bias):
    inputs = (input, offset, mask, weight) + ((bias,) if with_bias else ())

    def conv(x, o, m, w, b=None):
        return _tv_deform_conv(x, o, w, b, m, stride_h, stride_w, pad_h, pad_w, dilation_h,
                               dilation_w)

    grads = _vjp(conv, inputs, grad_output)
    for target, grad in zip((grad_input, grad_offset, grad_mask, grad_weight, grad_bias),
                            grads):
        target.copy_(grad)


def _tv_deform_conv(input, offset, weight, bias, mask, stride_h, stride_w, pad_h, pad_w,
                    dilation_h, dilation_w):
    import torchvision
    return torchvision.ops.deform_conv2d(
        input, offset, weight, bias, stride=(stride_h, stride_w), padding=(pad_h, pad_w),
        dilation=(dilation_h, dilation_w), mask=mask)


def _sigmoid_focal_loss_forward(input, target, weight, output, gamma, alpha):
    output.copy_(_sigmoid_focal_loss(input, target, weight, gamma, alpha))


def _sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma, alpha):
    grads = _vjp(lambda x: _sigmoid_focal_loss(x, target, weight, gamma, alpha), (input,),
                 torch.ones_like(input))
    grad_input.copy_(grads[0])


def _sigmoid_focal_loss(logits, labels, weight, gamma, alpha):
    """Per-element sigmoid focal loss (N, C) for labels (N,); a label outside [0, C) is
    background: every class is a negative for that row."""
    if weight.numel():
        raise MissingCompiledOpError(_missing_message('sigmoid_focal_loss with a class weight'))
    classes = torch.arange(logits.size(1), device=logits.device)
    positive = (labels.view(-1, 1) == classes).to(logits.dtype)
    prob = logits.sigmoid()
    pos_loss = -alpha * (1 - prob).pow(gamma) * torch.nn.functional.logsigmoid(logits)
    neg_loss = -(1 - alpha) * prob.pow(gamma) * torch.nn.functional.logsigmoid(-logits)
    return positive * pos_loss + (1 - positive) * neg_loss


def _ms_deform_attn_forward(value, spatial_shapes, level_start_index, sampling_loc, attn_weight,
                            im2col_step):
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_loc, attn_weight)


def _ms_deform_attn_backward(value, spatial_shapes, level_start_index, sampling_loc,
                             attn_weight, grad_output, grad_value, grad_sampling_loc,
                             grad_attn_weight, im2col_step):
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    grads = _vjp(lambda v, s, a: multi_scale_deformable_attn_pytorch(v, spatial_shapes, s, a),
                 (value, sampling_loc, attn_weight), grad_output)
    for target, grad in zip((grad_value, grad_sampling_loc, grad_attn_weight), grads):
        target.copy_(grad)


def _vjp(function, inputs, grad_output):
    """Gradients of ``function(*inputs)`` against ``grad_output``, for each input."""
    leaves = [x.detach().requires_grad_() for x in inputs]
    with torch.enable_grad():
        output = function(*leaves)
        grads = torch.autograd.grad(output, leaves, grad_output, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads)]


_KERNELS = {  # mmcv._ext name: implementation
    'get_compiler_version': _get_compiler_version,
    'get_compiling_cuda_version': _get_compiling_cuda_version,
    'nms': _nms,
    'roi_align_forward': _roi_align_forward,
    'roi_align_backward': _roi_align_backward,
    'roi_pool_forward': _roi_pool_forward,
    'roi_pool_backward': _roi_pool_backward,
    'deform_conv_forward': _deform_conv_forward,
    'deform_conv_backward_input': _deform_conv_backward_input,
    'deform_conv_backward_parameters': _deform_conv_backward_parameters,
    'modulated_deform_conv_forward': _modulated_deform_conv_forward,
    'modulated_deform_conv_backward': _modulated_deform_conv_backward,
    'sigmoid_focal_loss_forward': _sigmoid_focal_loss_forward,
    'sigmoid_focal_loss_backward': _sigmoid_focal_loss_backward,
    'ms_deform_attn_forward': _ms_deform_attn_forward,
    'ms_deform_attn_backward': _ms_deform_attn_backward,
}
