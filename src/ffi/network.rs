//! C ABI of the detector-network kernels (seed 002): conv1d / conv2d, pooling, dense layers,
//! activations, softmax, and the network runner (crk_network_*).
//!
//! Arrays are row-major, NCHW (PyTorch's layout). As in the emulator functions, a zero batch
//! size n (or any zero dimension) is CRK_ERR_INVALID_ARGUMENT. Inputs and weights must be
//! finite (CRK_ERR_INVALID_ARGUMENT naming the first bad value); the output may be the input
//! array (in-place calls copy the input first). The kernels run on the calling thread (call
//! them from your own threads freely); crk_network_run takes a thread count.
//!
//! GPU variants (issue 7): crk_conv2d_f32_gpu, crk_conv1d_f32_gpu and the pooling functions
//! with suffix _gpu take the CPU function's arguments after a first `int32_t device` (a CUDA
//! device ordinal) and host arrays; the _gpu_device variants take `input` and `output` as
//! device pointers instead (weights and parameters stay on the host). Without a usable device
//! they return CRK_ERR_NO_DEVICE with a message; driver failures are CRK_ERR_DEVICE.

use core::ffi::c_char;
use std::ffi::CStr;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ffi::gpu::ordinal;
use crate::ffi::made::{CRK_ACTIVATION_RELU, CRK_ACTIVATION_SIGMOID, CRK_ACTIVATION_TANH, crk_activation};
use crate::ffi::{
    crk_status, free_handle, guard, handle, input, input_maybe_aliased, output, prepare_handle_out,
    write_handle,
};
use crate::gpu::conv as gpu_conv;
use crate::network::{ParallelNetwork, conv2d_parallel_finite, load_network};
use crate::nn::Network;
use crate::nn::activation::{ActivationFn, softmax_rows};
use crate::nn::conv::{Conv2d, ConvParams, first_non_finite, output_len};
use crate::nn::linear::Dense;
use crate::nn::pool::{Pool2d, PoolKind, global_avgpool};

/// x for x > 0, alpha x otherwise (crk_activation_f32; in crk_made_load_options and MADE files,
/// alpha = 0.01).
pub const CRK_ACTIVATION_LEAKY_RELU: crk_activation = 3;
/// x for x > 0, alpha (e^x - 1) otherwise (crk_activation_f32; in crk_made_load_options and
/// MADE files, alpha = 1).
pub const CRK_ACTIVATION_ELU: crk_activation = 4;

/// Convolution hyper-parameters; arrays are [height, width] (a conv1d uses index 1 only).
/// Padding is symmetric: padding[a] zeros before and after axis a (the Rust API and network
/// files take asymmetric padding).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_conv_params {
    /// Step between output positions (>= 1).
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps (>= 1).
    pub dilation: [usize; 2],
    /// Channel groups (>= 1; c_in and c_out must be multiples; groups = c_in is depthwise).
    pub groups: usize,
}

/// Pooling hyper-parameters; arrays are [height, width] (1-D pooling uses index 1 only).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct crk_pool_params {
    /// Window size (>= 1).
    pub kernel: [usize; 2],
    /// Step between windows (>= 1).
    pub stride: [usize; 2],
    /// Padding on each side (< kernel).
    pub padding: [usize; 2],
    /// Average pooling: 1 divides by the full window (padded cells count as zeros), 0 by the
    /// number of input cells in the window. Ignored by max pooling.
    pub count_include_pad: i32,
}

/// A loaded network (crkernels.network.v1 file): made by crk_network_load*, released with
/// crk_network_free. Immutable; may be shared across threads.
pub struct crk_network {
    inner: Network,
}

fn params_ref<'a, T>(params: *const T) -> Result<&'a T> {
    // SAFETY: the entry points' callers promise params is NULL or readable.
    unsafe { params.as_ref() }.ok_or_else(|| Error::NullPointer("params is NULL".into()))
}

fn conv_params(p: &crk_conv_params, one_d: bool) -> ConvParams {
    if one_d {
        ConvParams {
            stride: [1, p.stride[1]],
            padding: [[0, 0], [p.padding[1], p.padding[1]]],
            dilation: [1, p.dilation[1]],
            groups: p.groups,
        }
    } else {
        ConvParams {
            stride: p.stride,
            padding: [[p.padding[0], p.padding[0]], [p.padding[1], p.padding[1]]],
            dilation: p.dilation,
            groups: p.groups,
        }
    }
}

/// n * size with a message on overflow, or an error for n = 0.
fn batch_len(n: usize, size: usize, what: &str) -> Result<usize> {
    if n == 0 {
        return Err(Error::InvalidArgument(format!("{what}: batch size n must be >= 1")));
    }
    n.checked_mul(size).ok_or_else(|| Error::InvalidArgument(format!("{what}: n x {size} overflows")))
}

fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match first_non_finite(values) {
        Some(i) => Err(Error::InvalidArgument(format!("{what}[{i}] is {} (must be finite)", values[i]))),
        None => Ok(()),
    }
}

/// Where a kernel runs: on the calling thread, or on GPU `device` with arrays in host memory
/// or (Device) input and output in device memory.
#[derive(Clone, Copy, Debug)]
enum Target {
    Cpu,
    /// On the CPU, the batch split over this many threads (0: all cores).
    CpuThreads(usize),
    Gpu(i32),
    GpuDevice(i32),
}

/// Runs a conv2d (a conv1d is one of height 1) on `target`.
#[allow(clippy::too_many_arguments)]
unsafe fn conv(
    target: Target,
    input_ptr: *const f32,
    n: usize,
    (c_in, h, w): (usize, usize, usize),
    weight_ptr: *const f32,
    bias_ptr: *const f32,
    (c_out, kh, kw): (usize, usize, usize),
    params: ConvParams,
    output_ptr: *mut f32,
) -> Result<()> {
    let groups = params.groups.max(1);
    let weight_len = [c_out, c_in / groups, kh, kw]
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| Error::InvalidArgument("weight size overflows".into()))?;
    if weight_ptr.is_null() {
        return Err(Error::NullPointer("weight is NULL".into()));
    }
    // SAFETY: the caller promises weight_len readable values (checked non-null).
    let weight = unsafe { input(weight_ptr, weight_len, "weight")? };
    // SAFETY: NULL (no bias) or c_out readable values.
    let bias = if bias_ptr.is_null() { None } else { Some(unsafe { input(bias_ptr, c_out, "bias")? }) };
    let layer = Conv2d::new(c_in, [h, w], c_out, [kh, kw], params, weight, bias)?;
    let in_len = batch_len(n, layer.input_size(), "input")?;
    let out_len = batch_len(n, layer.output_size(), "output")?;
    if let Target::GpuDevice(device) = target {
        // SAFETY: the caller promises device arrays of in_len and out_len values.
        return unsafe {
            gpu_conv::conv2d_device(&layer, ordinal(device)?, input_ptr as u64, output_ptr as u64, n)
        };
    }
    // SAFETY: the caller promises in_len readable values; copied if it overlaps the output.
    let x = unsafe { input_maybe_aliased(input_ptr, in_len, output_ptr, "input")? };
    // SAFETY: the caller promises out_len writable values.
    let y = unsafe { output(output_ptr, out_len, "output")? };
    match target {
        Target::Gpu(device) => {
            check_finite("input", &x)?;
            gpu_conv::conv2d(&layer, ordinal(device)?, &x, y)
        }
        // The input checked sample by sample as it is copied in: a separate pass over the
        // batch cost 3 to 5% of a call.
        Target::CpuThreads(threads) => conv2d_parallel_finite(&layer, &x, y, threads),
        _ => layer.forward_finite_with(&mut layer.workspace(), &x, y),
    }
}

/// 2-D convolution (cross-correlation, as PyTorch's conv2d): input [n][c_in][h][w], weight
/// [c_out][c_in/groups][kh][kw], bias [c_out] or NULL, output [n][c_out][h_out][w_out] (sizes
/// from crk_conv2d_output_shape). out[o][y][x] = bias[o] + sum over c, i, j of
/// w[o][c][i][j] in_padded[g c_in/groups + c][y stride[0] + i dilation[0]][x stride[1] +
/// j dilation[1]], g = o / (c_out/groups). Runs on the calling thread.
///
/// Errors: CRK_ERR_NULL_POINTER (input, weight, params, output); CRK_ERR_INVALID_ARGUMENT
/// (a zero size, stride or dilation; c_in or c_out not divisible by groups; a dilated kernel
/// larger than the padded input; sizes whose products overflow; a non-finite weight, bias or
/// input value).
///
/// # Safety
/// Each array NULL or holding the values above; `params` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv2d_f32(
    input: *const f32,
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    kh: usize,
    kw: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, false);
        // SAFETY: forwarded from the caller.
        unsafe { conv(Target::Cpu, input, n, (c_in, h, w), weight, bias, (c_out, kh, kw), p, output) }
    })
}

/// 1-D convolution: input [n][c_in][len], weight [c_out][c_in/groups][k], bias [c_out] or
/// NULL, output [n][c_out][len_out] (crk_conv1d_output_length). Uses index 1 of the stride,
/// padding and dilation of `params`. Errors as crk_conv2d_f32.
///
/// # Safety
/// As crk_conv2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv1d_f32(
    input: *const f32,
    n: usize,
    c_in: usize,
    len: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    k: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, true);
        // SAFETY: forwarded from the caller.
        unsafe { conv(Target::Cpu, input, n, (c_in, 1, len), weight, bias, (c_out, 1, k), p, output) }
    })
}

/// crk_conv2d_f32 with the batch split over `n_threads` threads (0: all cores; 1: the
/// calling thread only); the samples are handed out as threads finish, and each is computed by
/// the same operations whatever thread runs it: the same numbers on any thread count. Errors
/// as crk_conv2d_f32.
///
/// # Safety
/// As crk_conv2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv2d_f32_threads(
    input: *const f32,
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    kh: usize,
    kw: usize,
    params: *const crk_conv_params,
    n_threads: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, false);
        let target = Target::CpuThreads(n_threads);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, h, w), weight, bias, (c_out, kh, kw), p, output) }
    })
}

/// crk_conv1d_f32 on `n_threads` threads, as crk_conv2d_f32_threads.
///
/// # Safety
/// As crk_conv1d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv1d_f32_threads(
    input: *const f32,
    n: usize,
    c_in: usize,
    len: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    k: usize,
    params: *const crk_conv_params,
    n_threads: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, true);
        let target = Target::CpuThreads(n_threads);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, 1, len), weight, bias, (c_out, 1, k), p, output) }
    })
}

/// The output size of a conv2d: per axis (in + 2 padding - dilation (k - 1) - 1) / stride + 1.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes, strides or dilations,
/// a dilated kernel larger than the padded input, overflow).
///
/// # Safety
/// `params` NULL or readable; `h_out`, `w_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv2d_output_shape(
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    params: *const crk_conv_params,
    h_out: *mut usize,
    w_out: *mut usize,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, false);
        if h_out.is_null() || w_out.is_null() {
            return Err(Error::NullPointer("h_out or w_out is NULL".into()));
        }
        let rows = output_len(h, kh, p.stride[0], p.padding[0], p.dilation[0])
            .map_err(|e| Error::InvalidArgument(format!("height: {}", e.message())))?;
        let cols = output_len(w, kw, p.stride[1], p.padding[1], p.dilation[1])
            .map_err(|e| Error::InvalidArgument(format!("width: {}", e.message())))?;
        // SAFETY: checked non-null; the caller promises they are writable.
        unsafe { (*h_out, *w_out) = (rows, cols) };
        Ok(())
    })
}

/// The output length of a conv1d (index 1 of `params`). Errors as crk_conv2d_output_shape.
///
/// # Safety
/// `params` NULL or readable; `len_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv1d_output_length(
    len: usize,
    k: usize,
    params: *const crk_conv_params,
    len_out: *mut usize,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, true);
        if len_out.is_null() {
            return Err(Error::NullPointer("len_out is NULL".into()));
        }
        let value = output_len(len, k, p.stride[1], p.padding[1], p.dilation[1])?;
        // SAFETY: checked non-null; the caller promises it is writable.
        unsafe { *len_out = value };
        Ok(())
    })
}

fn pool_layer(p: &crk_pool_params, max: bool, c: usize, hw: [usize; 2], one_d: bool) -> Result<Pool2d> {
    let kind = if max {
        PoolKind::Max
    } else {
        match p.count_include_pad {
            0 => PoolKind::Average { count_include_pad: false },
            1 => PoolKind::Average { count_include_pad: true },
            other => {
                return Err(Error::InvalidArgument(format!("count_include_pad must be 0 or 1, got {other}")));
            }
        }
    };
    let (kernel, stride, padding) = if one_d {
        ([1, p.kernel[1]], [1, p.stride[1]], [[0, 0], [p.padding[1], p.padding[1]]])
    } else {
        (p.kernel, p.stride, [[p.padding[0], p.padding[0]], [p.padding[1], p.padding[1]]])
    };
    Pool2d::new(kind, c, hw, kernel, stride, padding)
}

/// Runs a pooling layer on `target`.
unsafe fn pool(
    target: Target,
    input_ptr: *const f32,
    n: usize,
    layer: Result<Pool2d>,
    output_ptr: *mut f32,
) -> Result<()> {
    let layer = layer?;
    let in_len = batch_len(n, layer.input_size(), "input")?;
    let out_len = batch_len(n, layer.output_size(), "output")?;
    if let Target::GpuDevice(device) = target {
        // SAFETY: the caller promises device arrays of in_len and out_len values.
        return unsafe {
            gpu_conv::pool2d_device(&layer, ordinal(device)?, input_ptr as u64, output_ptr as u64, n)
        };
    }
    // SAFETY: the caller promises in_len readable values; copied if it overlaps the output.
    let x = unsafe { input_maybe_aliased(input_ptr, in_len, output_ptr, "input")? };
    check_finite("input", &x)?;
    // SAFETY: the caller promises out_len writable values.
    let y = unsafe { output(output_ptr, out_len, "output")? };
    match target {
        Target::Gpu(device) => gpu_conv::pool2d(&layer, ordinal(device)?, &x, y),
        _ => layer.forward(&x, y),
    }
}

/// Runs a global average pooling of n c planes on `target`.
unsafe fn global_pool(
    target: Target,
    input_ptr: *const f32,
    n: usize,
    c: usize,
    plane: usize,
    output_ptr: *mut f32,
) -> Result<()> {
    if c == 0 || plane == 0 {
        return Err(Error::InvalidArgument(format!("c ({c}) and plane ({plane}) must be >= 1")));
    }
    let out_len = batch_len(n, c, "output")?;
    let in_len = out_len
        .checked_mul(plane)
        .ok_or_else(|| Error::InvalidArgument("input: n x c x plane overflows".into()))?;
    if let Target::GpuDevice(device) = target {
        // SAFETY: the caller promises device arrays of in_len and out_len values.
        return unsafe {
            gpu_conv::global_avgpool_device(
                ordinal(device)?,
                input_ptr as u64,
                plane,
                output_ptr as u64,
                out_len,
            )
        };
    }
    // SAFETY: the caller promises in_len readable values; copied if it overlaps the output.
    let x = unsafe { input_maybe_aliased(input_ptr, in_len, output_ptr, "input")? };
    check_finite("input", &x)?;
    // SAFETY: the caller promises out_len writable values.
    let y = unsafe { output(output_ptr, out_len, "output")? };
    match target {
        Target::Gpu(device) => gpu_conv::global_avgpool(ordinal(device)?, &x, plane, y),
        _ => global_avgpool(&x, plane, y),
    }
}

/// The output size of a 2-D pooling: per axis (in + 2 padding - kernel) / stride + 1.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes or strides, padding not
/// smaller than the kernel, a kernel larger than the padded input).
///
/// # Safety
/// `params` NULL or readable; `h_out`, `w_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_pool2d_output_shape(
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    h_out: *mut usize,
    w_out: *mut usize,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, 1, [h, w], false)?;
        if h_out.is_null() || w_out.is_null() {
            return Err(Error::NullPointer("h_out or w_out is NULL".into()));
        }
        // SAFETY: checked non-null; the caller promises they are writable.
        unsafe { [*h_out, *w_out] = layer.output_hw() };
        Ok(())
    })
}

/// Max pooling over 2-D windows: input [n][c][h][w] to output [n][c][h_out][w_out]
/// (crk_pool2d_output_shape); padded cells are ignored.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes, padding not smaller
/// than the kernel, a kernel larger than the padded input, overflow, non-finite input).
///
/// # Safety
/// `input` holds n c h w values, `output` n c h_out w_out; `params` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool2d_f32(
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Cpu, input, n, layer, output) }
    })
}

/// Average pooling over 2-D windows (count_include_pad chooses the divisor). Otherwise as
/// crk_maxpool2d_f32.
///
/// # Safety
/// As crk_maxpool2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool2d_f32(
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Cpu, input, n, layer, output) }
    })
}

/// Max pooling along one axis: input [n][c][len] to output [n][c][len_out], index 1 of
/// `params`. Errors as crk_maxpool2d_f32.
///
/// # Safety
/// As crk_maxpool2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool1d_f32(
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Cpu, input, n, layer, output) }
    })
}

/// Average pooling along one axis (index 1 of `params`). Errors as crk_maxpool2d_f32.
///
/// # Safety
/// As crk_maxpool2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool1d_f32(
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Cpu, input, n, layer, output) }
    })
}

/// Global average pooling: input [n][c][plane] (any spatial shape flattened to `plane`
/// values) to output [n][c].
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes, overflow, non-finite
/// input).
///
/// # Safety
/// `input` holds n c plane values, `output` n c.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_global_avgpool_f32(
    input: *const f32,
    n: usize,
    c: usize,
    plane: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { global_pool(Target::Cpu, input, n, c, plane, output) }
    })
}

/// conv2d on a GPU (crk_conv2d_f32 with `device` first): the arrays are in host memory and
/// stream through device `device` in chunks sized from its free memory, so n is not limited
/// by the device. The results equal the CPU's to FP32 rounding (FP32 arithmetic, no TF32).
/// Weights and bias are uploaded on each call. Calls from several host threads on one device
/// are serialised. Returns when `output` is written.
///
/// Errors: as crk_conv2d_f32; CRK_ERR_NO_DEVICE (no `cuda` feature, no CUDA driver, `device`
/// negative or not below crk_device_count); CRK_ERR_DEVICE (driver errors, out of device
/// memory even for one sample; the message names the step). Also CRK_ERR_INVALID_ARGUMENT
/// for more than 65535 groups or a sample over 2^31 - 4096 values (GPU limits).
///
/// # Safety
/// As crk_conv2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv2d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    kh: usize,
    kw: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, false);
        let target = Target::Gpu(device);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, h, w), weight, bias, (c_out, kh, kw), p, output) }
    })
}

/// crk_conv2d_f32_gpu on device memory: `input` and `output` are DEVICE pointers on device
/// `device` (from cudaMalloc or cuMemAlloc in its primary context), holding n c_in h w and
/// n c_out h_out w_out floats, 4-byte aligned, not overlapping; `weight`, `bias` and `params`
/// are HOST pointers as in crk_conv2d_f32. Device values are not checked for finiteness
/// (non-finite values propagate). Returns when `output` is written (the work runs on the
/// device's legacy default stream).
///
/// Errors: as crk_conv2d_f32_gpu; CRK_ERR_NULL_POINTER (a NULL device pointer);
/// CRK_ERR_INVALID_ARGUMENT (a misaligned or overlapping device array).
///
/// # Safety
/// The device pointers must hold the values above on that device; host arrays as in
/// crk_conv2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv2d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    kh: usize,
    kw: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, false);
        let target = Target::GpuDevice(device);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, h, w), weight, bias, (c_out, kh, kw), p, output) }
    })
}

/// conv1d on a GPU with host arrays: crk_conv1d_f32 with `device` first; otherwise as
/// crk_conv2d_f32_gpu.
///
/// # Safety
/// As crk_conv1d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv1d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c_in: usize,
    len: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    k: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, true);
        let target = Target::Gpu(device);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, 1, len), weight, bias, (c_out, 1, k), p, output) }
    })
}

/// conv1d on a GPU with `input` and `output` in DEVICE memory (n c_in len and n c_out len_out
/// floats); weight, bias, params on the host. As crk_conv2d_f32_gpu_device.
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_conv1d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c_in: usize,
    len: usize,
    weight: *const f32,
    bias: *const f32,
    c_out: usize,
    k: usize,
    params: *const crk_conv_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let p = conv_params(params_ref(params)?, true);
        let target = Target::GpuDevice(device);
        // SAFETY: forwarded from the caller.
        unsafe { conv(target, input, n, (c_in, 1, len), weight, bias, (c_out, 1, k), p, output) }
    })
}

/// Max pooling 2-D on a GPU with host arrays: crk_maxpool2d_f32 with `device` first. Errors
/// as crk_maxpool2d_f32 plus the GPU errors of crk_conv2d_f32_gpu.
///
/// # Safety
/// As crk_maxpool2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool2d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Gpu(device), input, n, layer, output) }
    })
}

/// crk_maxpool2d_f32_gpu with `input` (n c h w floats) and `output` (n c h_out w_out) in
/// DEVICE memory, `params` on the host; device-pointer rules and errors as
/// crk_conv2d_f32_gpu_device.
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool2d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::GpuDevice(device), input, n, layer, output) }
    })
}

/// Average pooling 2-D on a GPU with host arrays; as crk_maxpool2d_f32_gpu.
///
/// # Safety
/// As crk_maxpool2d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool2d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Gpu(device), input, n, layer, output) }
    })
}

/// Average pooling 2-D on a GPU with device arrays; as crk_maxpool2d_f32_gpu_device.
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool2d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [h, w], false);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::GpuDevice(device), input, n, layer, output) }
    })
}

/// Max pooling 1-D on a GPU with host arrays: crk_maxpool1d_f32 with `device` first.
///
/// # Safety
/// As crk_maxpool1d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool1d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Gpu(device), input, n, layer, output) }
    })
}

/// Max pooling 1-D on a GPU with device arrays (n c len and n c len_out floats).
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_maxpool1d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, true, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::GpuDevice(device), input, n, layer, output) }
    })
}

/// Average pooling 1-D on a GPU with host arrays: crk_avgpool1d_f32 with `device` first.
///
/// # Safety
/// As crk_maxpool1d_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool1d_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::Gpu(device), input, n, layer, output) }
    })
}

/// Average pooling 1-D on a GPU with device arrays.
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_avgpool1d_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    len: usize,
    params: *const crk_pool_params,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let layer = pool_layer(params_ref(params)?, false, c, [1, len], true);
        // SAFETY: forwarded from the caller.
        unsafe { pool(Target::GpuDevice(device), input, n, layer, output) }
    })
}

/// Global average pooling on a GPU with host arrays: crk_global_avgpool_f32 with `device`
/// first (sums in double, as on the CPU). GPU errors as crk_conv2d_f32_gpu.
///
/// # Safety
/// As crk_global_avgpool_f32.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_global_avgpool_f32_gpu(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    plane: usize,
    output: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { global_pool(Target::Gpu(device), input, n, c, plane, output) })
}

/// Global average pooling on a GPU with `input` (n c plane floats) and `output` (n c) in
/// DEVICE memory; as crk_conv2d_f32_gpu_device.
///
/// # Safety
/// As crk_conv2d_f32_gpu_device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_global_avgpool_f32_gpu_device(
    device: i32,
    input: *const f32,
    n: usize,
    c: usize,
    plane: usize,
    output: *mut f32,
) -> crk_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { global_pool(Target::GpuDevice(device), input, n, c, plane, output) })
}

/// Dense layer y = W x + b: input [n][n_in], weight [n_out][n_in] (PyTorch's Linear), bias
/// [n_out] or NULL, output [n][n_out].
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes, overflow, non-finite
/// weights, bias or input).
///
/// # Safety
/// Arrays as above; `bias` NULL or n_out values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_dense_f32(
    input: *const f32,
    n: usize,
    n_in: usize,
    weight: *const f32,
    bias: *const f32,
    n_out: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        if weight.is_null() {
            return Err(Error::NullPointer("weight is NULL".into()));
        }
        let weight_len = n_in
            .checked_mul(n_out)
            .ok_or_else(|| Error::InvalidArgument("weight: n_out x n_in overflows".into()))?;
        // SAFETY: the caller promises the arrays.
        let w = unsafe { self::input(weight, weight_len, "weight")? };
        // SAFETY: NULL or n_out values.
        let b = if bias.is_null() { None } else { Some(unsafe { self::input(bias, n_out, "bias")? }) };
        let layer = Dense::new(n_in, n_out, w, b)?;
        let in_len = batch_len(n, n_in, "input")?;
        let out_len = batch_len(n, n_out, "output")?;
        // SAFETY: the caller promises in_len readable values.
        let x = unsafe { input_maybe_aliased(input, in_len, output, "input")? };
        check_finite("input", &x)?;
        // SAFETY: the caller promises out_len writable values.
        let y = unsafe { self::output(output, out_len, "output")? };
        layer.forward(&x, y)
    })
}

/// An activation of n values (output may equal input): CRK_ACTIVATION_RELU, _SIGMOID, _TANH,
/// _LEAKY_RELU (slope alpha below 0), _ELU (alpha (e^x - 1) below 0); alpha is ignored by the
/// others.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (n = 0, unknown kind, non-finite
/// alpha or input).
///
/// # Safety
/// `input` and `output` hold n values (they may be the same array).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_activation_f32(
    kind: crk_activation,
    alpha: f32,
    input: *const f32,
    n: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        let f = match kind {
            CRK_ACTIVATION_RELU => ActivationFn::Relu,
            CRK_ACTIVATION_SIGMOID => ActivationFn::Sigmoid,
            CRK_ACTIVATION_TANH => ActivationFn::Tanh,
            CRK_ACTIVATION_LEAKY_RELU => ActivationFn::LeakyRelu { alpha },
            CRK_ACTIVATION_ELU => ActivationFn::Elu { alpha },
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown activation {other} (RELU = 2, SIGMOID = 0, TANH = 1, LEAKY_RELU = 3, ELU = 4)"
                )));
            }
        }
        .validate()?;
        let len = batch_len(n, 1, "input")?;
        // SAFETY: the caller promises n values; copied if it overlaps the output.
        let x = unsafe { input_maybe_aliased(input, len, output, "input")? };
        check_finite("input", &x)?;
        // SAFETY: the caller promises n writable values.
        let y = unsafe { self::output(output, len, "output")? };
        y.copy_from_slice(&x);
        f.apply_all(y);
        Ok(())
    })
}

/// Softmax of each of n rows of row_len values, numerically stable (the row maximum is
/// subtracted before exponentiating). Output may equal input.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (zero sizes, overflow, non-finite
/// input).
///
/// # Safety
/// `input` and `output` hold n row_len values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_softmax_f32(
    input: *const f32,
    n: usize,
    row_len: usize,
    output: *mut f32,
) -> crk_status {
    guard(|| {
        if row_len == 0 {
            return Err(Error::InvalidArgument("row_len must be >= 1".into()));
        }
        let len = batch_len(n, row_len, "input")?;
        // SAFETY: the caller promises the arrays.
        let x = unsafe { input_maybe_aliased(input, len, output, "input")? };
        check_finite("input", &x)?;
        // SAFETY: as above.
        let y = unsafe { self::output(output, len, "output")? };
        y.copy_from_slice(&x);
        softmax_rows(y, row_len)
    })
}

/// Loads a network from a crkernels.network.v1 safetensors file (layer list and
/// hyper-parameters as JSON in the metadata, tensors layers.{i}.weight / .bias / batch-norm
/// statistics; see the README). Shapes are checked against the declared inputs.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (path not UTF-8); CRK_ERR_IO
/// (unreadable file); CRK_ERR_FORMAT (corrupt file, wrong format string, bad JSON, unknown
/// layer, missing tensor, wrong shape, non-finite weight, a network whose single sample needs
/// more than 1 GiB of working memory; the message names the layer and tensor).
///
/// Memory: the file's bytes while loading, and for the handle about its weights (f32) with
/// their packed copies; loading never allocates more than a small multiple of the file size
/// (declared sizes are checked against the data before they are used).
///
/// # Safety
/// `path` a NUL-terminated string or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_load(path: *const c_char, out: *mut *mut crk_network) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        if path.is_null() {
            return Err(Error::NullPointer("path is NULL".into()));
        }
        // SAFETY: non-null and NUL-terminated (the caller promises).
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| Error::InvalidArgument("path is not valid UTF-8".into()))?;
        let inner = load_network(Path::new(path))?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_network { inner }) }
    })
}

/// Loads a network from the `len` bytes of a file in memory (copied). Errors as
/// crk_network_load.
///
/// # Safety
/// `bytes` readable for `len` bytes or NULL; `out` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_load_buffer(
    bytes: *const u8,
    len: usize,
    out: *mut *mut crk_network,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        unsafe { prepare_handle_out(out, "out")? };
        if bytes.is_null() {
            return Err(Error::NullPointer("bytes is NULL".into()));
        }
        // SAFETY: forwarded from the caller.
        let data = unsafe { input(bytes, len, "bytes")? };
        let inner = Network::from_safetensors(data)?;
        // SAFETY: checked above.
        unsafe { write_handle(out, crk_network { inner }) }
    })
}

/// The number of declared inputs.
///
/// # Safety
/// `net` a live handle or NULL; `count` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_input_count(net: *const crk_network, count: *mut usize) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        // SAFETY: writable or NULL (the caller promises).
        let slot = unsafe { count.as_mut() }.ok_or_else(|| Error::NullPointer("count is NULL".into()))?;
        *slot = net.inputs().len();
        Ok(())
    })
}

/// The per-sample shape of input `index` (channels first): its number of dimensions goes to
/// `n_dims` and up to `max_dims` sizes to `shape` (which may be NULL when max_dims = 0), and
/// its total size (product) to `size` (NULL allowed).
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (index out of range).
///
/// # Safety
/// `net` a live handle or NULL; `shape` writable for max_dims values or NULL; `n_dims`,
/// `size` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_input_shape(
    net: *const crk_network,
    index: usize,
    shape: *mut usize,
    max_dims: usize,
    n_dims: *mut usize,
    size: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        let spec = net.inputs().get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "input index {index} out of range (the network has {})",
                net.inputs().len()
            ))
        })?;
        // SAFETY: writable or NULL (the caller promises).
        let dims = unsafe { n_dims.as_mut() }.ok_or_else(|| Error::NullPointer("n_dims is NULL".into()))?;
        let count = spec.shape.len().min(max_dims);
        // SAFETY: the caller promises max_dims writable values.
        let out = unsafe { output(shape, count, "shape")? };
        out.copy_from_slice(&spec.shape[..count]);
        *dims = spec.shape.len();
        // SAFETY: writable or NULL (the caller promises).
        if let Some(total) = unsafe { size.as_mut() } {
            *total = spec.size();
        }
        Ok(())
    })
}

/// Working memory of one thread running the network, in bytes (at most 1 GiB): `chunk` x
/// `bytes_per_sample` + the convolutions' padded input of one sample and the dense and im2col
/// packing panels. `chunk` (32, or fewer for large activations) is how many samples run
/// together; `bytes_per_sample` is 4 x the sum of the layer output sizes. Any pointer but
/// `net` may be NULL.
///
/// Errors: CRK_ERR_NULL_POINTER (`net`).
///
/// # Safety
/// `net` a live handle or NULL; the others writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_workspace_bytes(
    net: *const crk_network,
    bytes: *mut usize,
    chunk: *mut usize,
    bytes_per_sample: *mut usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        for (slot, value) in
            [(bytes, net.workspace_bytes()), (chunk, net.chunk()), (bytes_per_sample, net.bytes_per_sample())]
        {
            // SAFETY: NULL or writable (the caller promises).
            if let Some(slot) = unsafe { slot.as_mut() } {
                *slot = value;
            }
        }
        Ok(())
    })
}

/// Multiply-adds per sample in the network's convolution and dense layers (FLOPs are twice
/// that): what a batch costs.
///
/// Errors: CRK_ERR_NULL_POINTER.
///
/// # Safety
/// `net` a live handle or NULL; `macs` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_macs_per_sample(net: *const crk_network, macs: *mut u64) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        // SAFETY: NULL or writable (the caller promises).
        let slot = unsafe { macs.as_mut() }.ok_or_else(|| Error::NullPointer("macs is NULL".into()))?;
        *slot = net.macs_per_sample();
        Ok(())
    })
}

/// Values per sample of the network's output.
///
/// # Safety
/// `net` a live handle or NULL; `size` writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_output_size(net: *const crk_network, size: *mut usize) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        // SAFETY: writable or NULL (the caller promises).
        let slot = unsafe { size.as_mut() }.ok_or_else(|| Error::NullPointer("size is NULL".into()))?;
        *slot = net.output_size();
        Ok(())
    })
}

/// Runs the network on a batch: inputs[j] is [batch][shape of input j] (n_inputs = the
/// network's input count, in file order), output [batch][output size] with output_len =
/// batch x output size. n_threads: 0 = all cores; the results are the same on any count.
///
/// Memory: per thread, crk_network_workspace_bytes (chunk x 4 x the sum of the layer output
/// sizes + the convolutions' padded input of one sample and the packing panels, at most
/// 1 GiB), whatever the batch: the batch runs in chunks of up to 32 samples.
///
/// Errors: CRK_ERR_NULL_POINTER; CRK_ERR_INVALID_ARGUMENT (batch = 0, wrong n_inputs or
/// output_len, a non-finite input value, named by input, sample and index).
///
/// # Safety
/// `net` a live handle or NULL; `inputs` NULL or n_inputs pointers each to its input's
/// values; `output` writable for output_len values or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_run(
    net: *const crk_network,
    inputs: *const *const f32,
    n_inputs: usize,
    batch: usize,
    n_threads: usize,
    output: *mut f32,
    output_len: usize,
) -> crk_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let net = &unsafe { handle(net, "net")? }.inner;
        if inputs.is_null() {
            return Err(Error::NullPointer("inputs is NULL".into()));
        }
        if n_inputs != net.inputs().len() {
            return Err(Error::InvalidArgument(format!(
                "n_inputs is {n_inputs}, the network has {} inputs",
                net.inputs().len()
            )));
        }
        let expected = batch_len(batch, net.output_size(), "output")?;
        if output_len != expected {
            return Err(Error::InvalidArgument(format!(
                "output_len is {output_len}, expected batch x output size = {batch} x {} = {expected}",
                net.output_size()
            )));
        }
        // SAFETY: the caller promises n_inputs pointers.
        let pointers = unsafe { input(inputs, n_inputs, "inputs")? };
        let mut arrays = Vec::with_capacity(n_inputs);
        for (spec, &ptr) in net.inputs().iter().zip(pointers) {
            let len = batch_len(batch, spec.size(), &spec.name)?;
            let name = format!("inputs[{}] ('{}')", arrays.len(), spec.name);
            // SAFETY: the caller promises batch x size values; copied if it overlaps the output.
            arrays.push(unsafe { input_maybe_aliased(ptr, len, output, &name)? });
        }
        let views: Vec<&[f32]> = arrays.iter().map(|a| a.as_ref()).collect();
        // SAFETY: the caller promises output_len writable values.
        let y = unsafe { self::output(output, output_len, "output")? };
        net.run_parallel(&views, batch, n_threads, y)
    })
}

/// Releases a network; NULL is a no-op.
///
/// # Safety
/// `net` NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn crk_network_free(net: *mut crk_network) {
    // SAFETY: forwarded from the caller.
    unsafe { free_handle(net) }
}
