"""Convolution and pooling on float32 NCHW / NCL arrays (crk_conv*, crk_*pool*), PyTorch
semantics (cross-correlation, symmetric zero padding). Dimensionless: outputs are in the
units of input x weight (convolution) or of the input (pooling)."""

import ctypes

import numpy as np

from . import _native
from ._native import _lib, check, crk_conv_params, crk_pool_params, f32, fptr


def _pair(v, name):
    if np.ndim(v) == 0:
        v = (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2 or min(v) < 0:
        raise _native.InvalidArgument(f"{name} must be a non-negative int or a pair, got {v}")
    return v


def conv_params(stride=1, padding=0, dilation=1, groups=1, one_d=False):
    """A crk_conv_params; ints apply to both axes (1-D: index 1 only is used)."""
    if one_d:
        s, p, d = (1, int(stride)), (0, int(padding)), (1, int(dilation))
    else:
        s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if int(groups) < 0:
        raise _native.InvalidArgument("groups must be >= 1")
    return crk_conv_params((ctypes.c_size_t * 2)(*s), (ctypes.c_size_t * 2)(*p), (ctypes.c_size_t * 2)(*d), int(groups))


def pool_params(kernel, stride=None, padding=0, count_include_pad=True, one_d=False):
    """A crk_pool_params (stride None: the kernel size)."""
    if one_d:
        k = (1, int(kernel))
        s = (1, int(kernel if stride is None else stride))
        p = (0, int(padding))
    else:
        k = _pair(kernel, "kernel")
        s = k if stride is None else _pair(stride, "stride")
        p = _pair(padding, "padding")
    return crk_pool_params((ctypes.c_size_t * 2)(*k), (ctypes.c_size_t * 2)(*s), (ctypes.c_size_t * 2)(*p),
                           int(bool(count_include_pad)))


def conv2d_output_shape(h, w, kh, kw, stride=1, padding=0, dilation=1):
    """(h_out, w_out) of a conv2d: (in + 2 padding - dilation (k - 1) - 1) // stride + 1
    (crk_conv2d_output_shape)."""
    p = conv_params(stride, padding, dilation)
    ho, wo = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.crk_conv2d_output_shape(int(h), int(w), int(kh), int(kw), ctypes.byref(p), ctypes.byref(ho),
                                       ctypes.byref(wo)), "crk_conv2d_output_shape")
    return ho.value, wo.value


def conv1d_output_length(length, k, stride=1, padding=0, dilation=1):
    """len_out of a conv1d (crk_conv1d_output_length)."""
    p = conv_params(stride, padding, dilation, one_d=True)
    out = ctypes.c_size_t()
    check(_lib.crk_conv1d_output_length(int(length), int(k), ctypes.byref(p), ctypes.byref(out)),
          "crk_conv1d_output_length")
    return out.value


def pool2d_output_shape(h, w, kernel, stride=None, padding=0):
    """(h_out, w_out) of a 2-D pooling: (in + 2 padding - kernel) // stride + 1
    (crk_pool2d_output_shape)."""
    p = pool_params(kernel, stride, padding)
    ho, wo = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.crk_pool2d_output_shape(int(h), int(w), ctypes.byref(p), ctypes.byref(ho), ctypes.byref(wo)),
          "crk_pool2d_output_shape")
    return ho.value, wo.value


def _weights(weight, bias, ndim):
    wt = f32(weight)
    if wt.ndim != ndim:
        raise _native.InvalidArgument(f"weight must have {ndim} dimensions, got shape {wt.shape}")
    b = None if bias is None else f32(bias).ravel()
    if b is not None and b.size != wt.shape[0]:
        raise _native.InvalidArgument(f"bias has {b.size} values for {wt.shape[0]} output channels")
    return wt, b, (None if b is None else fptr(b))


def _conv2d(device, x, weight, bias, stride, padding, dilation, groups, threads=1):
    x = f32(x)
    if x.ndim != 4:
        raise _native.InvalidArgument(f"input must be [n, c_in, h, w], got shape {x.shape}")
    wt, b, bp = _weights(weight, bias, 4)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = wt.shape
    if wt.shape[1] * max(int(groups), 1) != c_in:
        raise _native.InvalidArgument(f"weight {wt.shape} does not fit c_in = {c_in} with groups = {groups}")
    p = conv_params(stride, padding, dilation, groups)
    ho, wo = conv2d_output_shape(h, w, kh, kw, stride, padding, dilation)
    out = np.empty((n, c_out, ho, wo), dtype=np.float32)
    if device is None and threads == 1:
        check(_lib.crk_conv2d_f32(fptr(x), n, c_in, h, w, fptr(wt), bp, c_out, kh, kw, ctypes.byref(p), fptr(out)),
              "crk_conv2d_f32")
    elif device is None:
        check(_lib.crk_conv2d_f32_threads(fptr(x), n, c_in, h, w, fptr(wt), bp, c_out, kh, kw, ctypes.byref(p),
                                          int(threads), fptr(out)), "crk_conv2d_f32_threads")
    else:
        check(_lib.crk_conv2d_f32_gpu(int(device), fptr(x), n, c_in, h, w, fptr(wt), bp, c_out, kh, kw,
                                      ctypes.byref(p), fptr(out)), "crk_conv2d_f32_gpu")
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, threads=1):
    """2-D convolution (PyTorch conv2d): x [n, c_in, h, w], weight [c_out, c_in/groups, kh, kw],
    bias [c_out] or None; returns [n, c_out, h_out, w_out] float32 (crk_conv2d_f32;
    crk_conv2d_f32_threads for `threads` other than 1, 0 meaning all cores: the same numbers)."""
    return _conv2d(None, x, weight, bias, stride, padding, dilation, groups, threads)


def conv2d_gpu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, device=0):
    """conv2d on GPU `device` (crk_conv2d_f32_gpu); raises NoDevice without one."""
    return _conv2d(device, x, weight, bias, stride, padding, dilation, groups)


def _conv1d(device, x, weight, bias, stride, padding, dilation, groups, threads=1):
    x = f32(x)
    if x.ndim != 3:
        raise _native.InvalidArgument(f"input must be [n, c_in, len], got shape {x.shape}")
    wt, b, bp = _weights(weight, bias, 3)
    n, c_in, length = x.shape
    c_out, _, k = wt.shape
    if wt.shape[1] * max(int(groups), 1) != c_in:
        raise _native.InvalidArgument(f"weight {wt.shape} does not fit c_in = {c_in} with groups = {groups}")
    p = conv_params(stride, padding, dilation, groups, one_d=True)
    lo = conv1d_output_length(length, k, stride, padding, dilation)
    out = np.empty((n, c_out, lo), dtype=np.float32)
    if device is None and threads == 1:
        check(_lib.crk_conv1d_f32(fptr(x), n, c_in, length, fptr(wt), bp, c_out, k, ctypes.byref(p), fptr(out)),
              "crk_conv1d_f32")
    elif device is None:
        check(_lib.crk_conv1d_f32_threads(fptr(x), n, c_in, length, fptr(wt), bp, c_out, k, ctypes.byref(p),
                                          int(threads), fptr(out)), "crk_conv1d_f32_threads")
    else:
        check(_lib.crk_conv1d_f32_gpu(int(device), fptr(x), n, c_in, length, fptr(wt), bp, c_out, k,
                                      ctypes.byref(p), fptr(out)), "crk_conv1d_f32_gpu")
    return out


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, threads=1):
    """1-D convolution: x [n, c_in, len], weight [c_out, c_in/groups, k], bias [c_out] or
    None; returns [n, c_out, len_out] float32 (crk_conv1d_f32; crk_conv1d_f32_threads for
    `threads` other than 1, 0 meaning all cores)."""
    return _conv1d(None, x, weight, bias, stride, padding, dilation, groups, threads)


def conv1d_gpu(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, device=0):
    """conv1d on GPU `device` (crk_conv1d_f32_gpu); raises NoDevice without one."""
    return _conv1d(device, x, weight, bias, stride, padding, dilation, groups)


def _pool2d(cpu, gpu, name, device, x, kernel, stride, padding, count_include_pad):
    x = f32(x)
    if x.ndim != 4:
        raise _native.InvalidArgument(f"input must be [n, c, h, w], got shape {x.shape}")
    n, c, h, w = x.shape
    p = pool_params(kernel, stride, padding, count_include_pad)
    ho, wo = pool2d_output_shape(h, w, kernel, stride, padding)
    out = np.empty((n, c, ho, wo), dtype=np.float32)
    if device is None:
        check(cpu(fptr(x), n, c, h, w, ctypes.byref(p), fptr(out)), name)
    else:
        check(gpu(int(device), fptr(x), n, c, h, w, ctypes.byref(p), fptr(out)), name + "_gpu")
    return out


def _pool1d(cpu, gpu, name, device, x, kernel, stride, padding, count_include_pad):
    x = f32(x)
    if x.ndim != 3:
        raise _native.InvalidArgument(f"input must be [n, c, len], got shape {x.shape}")
    n, c, length = x.shape
    p = pool_params(kernel, stride, padding, count_include_pad, one_d=True)
    ho, lo = ctypes.c_size_t(), ctypes.c_size_t()
    check(_lib.crk_pool2d_output_shape(1, length, ctypes.byref(p), ctypes.byref(ho), ctypes.byref(lo)),
          "crk_pool2d_output_shape")
    out = np.empty((n, c, lo.value), dtype=np.float32)
    if device is None:
        check(cpu(fptr(x), n, c, length, ctypes.byref(p), fptr(out)), name)
    else:
        check(gpu(int(device), fptr(x), n, c, length, ctypes.byref(p), fptr(out)), name + "_gpu")
    return out


def maxpool2d(x, kernel, stride=None, padding=0, device=None):
    """Max pooling of x [n, c, h, w] (padded cells ignored) to [n, c, h_out, w_out]
    (crk_maxpool2d_f32; with `device`: crk_maxpool2d_f32_gpu)."""
    return _pool2d(_lib.crk_maxpool2d_f32, _lib.crk_maxpool2d_f32_gpu, "crk_maxpool2d_f32", device, x, kernel,
                   stride, padding, True)


def avgpool2d(x, kernel, stride=None, padding=0, count_include_pad=True, device=None):
    """Average pooling of x [n, c, h, w] (crk_avgpool2d_f32; with `device`:
    crk_avgpool2d_f32_gpu)."""
    return _pool2d(_lib.crk_avgpool2d_f32, _lib.crk_avgpool2d_f32_gpu, "crk_avgpool2d_f32", device, x, kernel,
                   stride, padding, count_include_pad)


def maxpool1d(x, kernel, stride=None, padding=0, device=None):
    """Max pooling of x [n, c, len] (crk_maxpool1d_f32; with `device`: crk_maxpool1d_f32_gpu)."""
    return _pool1d(_lib.crk_maxpool1d_f32, _lib.crk_maxpool1d_f32_gpu, "crk_maxpool1d_f32", device, x, kernel,
                   stride, padding, True)


def avgpool1d(x, kernel, stride=None, padding=0, count_include_pad=True, device=None):
    """Average pooling of x [n, c, len] (crk_avgpool1d_f32; with `device`:
    crk_avgpool1d_f32_gpu)."""
    return _pool1d(_lib.crk_avgpool1d_f32, _lib.crk_avgpool1d_f32_gpu, "crk_avgpool1d_f32", device, x, kernel,
                   stride, padding, count_include_pad)


def global_avgpool(x, device=None):
    """Mean over all spatial positions: x [n, c, ...] to [n, c] (crk_global_avgpool_f32;
    with `device`: crk_global_avgpool_f32_gpu)."""
    x = f32(x)
    if x.ndim < 3:
        raise _native.InvalidArgument(f"input must be [n, c, ...], got shape {x.shape}")
    n, c = x.shape[:2]
    plane = int(np.prod(x.shape[2:]))
    out = np.empty((n, c), dtype=np.float32)
    if device is None:
        check(_lib.crk_global_avgpool_f32(fptr(x), n, c, plane, fptr(out)), "crk_global_avgpool_f32")
    else:
        check(_lib.crk_global_avgpool_f32_gpu(int(device), fptr(x), n, c, plane, fptr(out)),
              "crk_global_avgpool_f32_gpu")
    return out


def conv2d_gpu_device(x_device, shape, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                      out_device=None, device=0):
    """conv2d with input and output in device memory (integer device addresses, e.g. CuPy's
    a.data.ptr): x [n, c_in, h, w] float32 of `shape` in, [n, c_out, h_out, w_out] out; weight
    and bias are host arrays (crk_conv2d_f32_gpu_device). Returns the output shape."""
    n, c_in, h, w = (int(v) for v in shape)
    wt, b, bp = _weights(weight, bias, 4)
    c_out, _, kh, kw = wt.shape
    p = conv_params(stride, padding, dilation, groups)
    ho, wo = conv2d_output_shape(h, w, kh, kw, stride, padding, dilation)
    check(_lib.crk_conv2d_f32_gpu_device(int(device), int(x_device) or None, n, c_in, h, w, fptr(wt), bp,
                                         c_out, kh, kw, ctypes.byref(p), int(out_device or 0) or None),
          "crk_conv2d_f32_gpu_device")
    return (n, c_out, ho, wo)


def conv1d_gpu_device(x_device, shape, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                      out_device=None, device=0):
    """conv1d with input and output in device memory (integer device addresses): x [n, c_in,
    len] float32 of `shape` in, [n, c_out, len_out] out (crk_conv1d_f32_gpu_device). Returns
    the output shape."""
    n, c_in, length = (int(v) for v in shape)
    wt, b, bp = _weights(weight, bias, 3)
    c_out, _, k = wt.shape
    p = conv_params(stride, padding, dilation, groups, one_d=True)
    lo = conv1d_output_length(length, k, stride, padding, dilation)
    check(_lib.crk_conv1d_f32_gpu_device(int(device), int(x_device) or None, n, c_in, length, fptr(wt), bp,
                                         c_out, k, ctypes.byref(p), int(out_device or 0) or None),
          "crk_conv1d_f32_gpu_device")
    return (n, c_out, lo)

