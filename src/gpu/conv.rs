//! Convolutions and pooling on the GPU (issue 7 (c)): the layers of [`crate::nn::conv`] and
//! [`crate::nn::pool`] run by the kernels of `kernels/conv.cu`, with the same results as the
//! CPU to FP32 rounding (max |gpu - cpu| <= 1e-5 max |cpu| is tested).
//!
//! - Convolution: an implicit GEMM per group, FP32 FMAs on the SIMT cores (no TF32), tiles of
//!   64 (or 32, for groups of at most 32 output channels) output channels x 128 positions.
//!   Every [`ConvParams`](crate::nn::conv::ConvParams) combination the CPU accepts runs:
//!   strides, asymmetric padding, dilation, groups; bias added at the end.
//! - Pooling: one thread per output cell; global average pooling: one warp per plane, summed
//!   in f64 as on the CPU.
//!
//! Two ways in. Host arrays (`conv2d`, `pool2d`, ...): the batch streams through device
//! buffers in chunks sized from the free device memory, so the batch size is never limited
//! by the device. Device arrays (`*_device`): the caller's device addresses are read and
//! written in place, in launches small enough that every index fits the kernels' 32-bit
//! arithmetic. Weights, biases and the patch table are uploaded on each call (a few hundred
//! kB at most for the layers of the detector networks). Every call returns when its output is
//! written.
//!
//! Without the `cuda` feature, without a driver or without the device, every function returns
//! [`Error::NoDevice`] (after checking its arguments).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Gpu;
use crate::nn::conv::{Conv1d, Conv2d};
use crate::nn::pool::Pool2d;
use crate::{Error, Result};

/// The kernels compute indices in 32 bits: per launch, samples x values per sample (input and
/// output) stay below this, 2^31 less room for the threads of a last, partly used block.
const MAX_INDEX: usize = (1 << 31) - 4096;

/// The user's cap on samples per host-array chunk (0: none), see [`set_max_chunk_samples`].
static MAX_CHUNK_SAMPLES: AtomicUsize = AtomicUsize::new(0);

/// Caps the samples per chunk of the host-array functions (0, the default, lets free device
/// memory decide). Smaller chunks use less device memory; results do not depend on the chunk
/// size. Applies to every device and thread.
pub fn set_max_chunk_samples(limit: usize) {
    MAX_CHUNK_SAMPLES.store(limit, Ordering::Relaxed);
}

/// The batch size of arrays of `input` and `output` values for samples of `per_in` and
/// `per_out` values, or InvalidArgument.
fn batch(input: usize, output: usize, per_in: usize, per_out: usize) -> Result<usize> {
    let n = input / per_in;
    if input != n * per_in || output != n.saturating_mul(per_out) {
        return Err(Error::InvalidArgument(format!(
            "input has {input} values and output {output}: expected n x {per_in} and n x {per_out}"
        )));
    }
    Ok(n)
}

/// Samples per launch so that every index of a launch fits [`MAX_INDEX`]; InvalidArgument
/// when one sample is already too large.
fn launch_limit(per_in: usize, per_out: usize) -> Result<usize> {
    let largest = per_in.max(per_out);
    if largest > MAX_INDEX {
        return Err(Error::InvalidArgument(format!(
            "a sample of {largest} values is too large for the GPU kernels (at most {MAX_INDEX})"
        )));
    }
    Ok(MAX_INDEX / largest)
}

/// A device address range of `len` f32 values from the caller, checked: non-null, 4-byte
/// aligned, no overflow.
fn device_range(address: u64, len: usize, name: &str) -> Result<std::ops::Range<u64>> {
    if address == 0 {
        return Err(Error::NullPointer(format!("{name} is a null device address")));
    }
    if !address.is_multiple_of(4) {
        return Err(Error::InvalidArgument(format!(
            "{name} (device address {address:#x}) is not 4-byte aligned"
        )));
    }
    let bytes = (len as u64)
        .checked_mul(4)
        .and_then(|b| address.checked_add(b))
        .ok_or_else(|| Error::InvalidArgument(format!("{name}: {len} values overflow the address space")))?;
    Ok(address..bytes)
}

/// Checks device input and output ranges: valid and not overlapping (the kernels read the
/// input while writing the output).
fn device_arrays(input: u64, in_len: usize, output: u64, out_len: usize) -> Result<()> {
    let a = device_range(input, in_len, "input")?;
    let b = device_range(output, out_len, "output")?;
    if a.start < b.end && b.start < a.end {
        return Err(Error::InvalidArgument(
            "input and output device arrays overlap (in-place GPU calls are not supported)".into(),
        ));
    }
    Ok(())
}

/// Runs `body` on device `ordinal` (holding its lock), or NoDevice.
#[cfg(feature = "cuda")]
fn on_device<T>(ordinal: usize, body: impl FnOnce(&mut super::DeviceState) -> Result<T>) -> Result<T> {
    Gpu::get(ordinal)?.with(body)
}

/// Without `cuda` there is never a device: Gpu::get returns NoDevice.
#[cfg(not(feature = "cuda"))]
fn on_device<T>(ordinal: usize, _body: impl FnOnce(&mut std::convert::Infallible) -> Result<T>) -> Result<T> {
    let gpu = Gpu::get(ordinal)?;
    match gpu.never {}
}

/// [`Conv2d::forward`] on device `device`: `input` [n][c_in][h][w] and `output`
/// [n][c_out][h_out][w_out] in host memory, streamed through the device in chunks.
///
/// Errors: InvalidArgument (lengths not n whole samples; more than 65535 groups; a sample
/// over 2^31 - 4096 values); NoDevice (no `cuda`, no driver, no such device); Device (driver
/// errors, named; out of device memory even for one sample).
pub fn conv2d(layer: &Conv2d, device: usize, input: &[f32], output: &mut [f32]) -> Result<()> {
    let n = batch(input.len(), output.len(), layer.input_size(), layer.output_size())?;
    let limit = launch_limit(layer.input_size(), layer.output_size())?;
    check_groups(layer)?;
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            let weights = cuda::ConvWeights::upload(state, layer)?;
            let per = (layer.input_size(), layer.output_size());
            cuda::stream_batches(state, n, per, input, output, limit, |state, x, y, count| {
                cuda::launch_conv(state, layer, &weights, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (n, limit);
            match *state {}
        }
    })
}

/// [`conv2d`] on device arrays: `input` is the device address of n c_in h w f32 values,
/// `output` of n c_out h_out w_out (device `device`, its primary context: what cudaMalloc of
/// the CUDA runtime returns). Errors as [`conv2d`], plus NullPointer (a zero address) and
/// InvalidArgument (a misaligned address; overlapping arrays). n = 0 does nothing.
///
/// # Safety
/// The addresses must hold those values on that device, and no other work may write them
/// during the call.
pub unsafe fn conv2d_device(layer: &Conv2d, device: usize, input: u64, output: u64, n: usize) -> Result<()> {
    let (per_in, per_out) = (layer.input_size(), layer.output_size());
    let limit = launch_limit(per_in, per_out)?;
    check_groups(layer)?;
    device_arrays(input, n.saturating_mul(per_in), output, n.saturating_mul(per_out))?;
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            let weights = cuda::ConvWeights::upload(state, layer)?;
            cuda::device_batches(state, n, (per_in, per_out), (input, output), limit, |state, x, y, count| {
                cuda::launch_conv(state, layer, &weights, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = limit;
            match *state {}
        }
    })
}

/// [`Conv1d::forward`] on the GPU (the conv2d of height 1 it is); as [`conv2d`].
pub fn conv1d(layer: &Conv1d, device: usize, input: &[f32], output: &mut [f32]) -> Result<()> {
    conv2d(layer.as_conv2d(), device, input, output)
}

/// [`conv1d`] on device arrays; as [`conv2d_device`].
///
/// # Safety
/// As [`conv2d_device`].
pub unsafe fn conv1d_device(layer: &Conv1d, device: usize, input: u64, output: u64, n: usize) -> Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { conv2d_device(layer.as_conv2d(), device, input, output, n) }
}

/// The kernels put groups on the grid's z axis (at most 65535).
fn check_groups(layer: &Conv2d) -> Result<()> {
    let groups = layer.params().groups;
    if groups > 65_535 {
        return Err(Error::InvalidArgument(format!(
            "{groups} groups: the GPU convolution takes at most 65535"
        )));
    }
    Ok(())
}

/// [`Pool2d::forward`] on device `device` with host arrays; errors as [`conv2d`].
pub fn pool2d(layer: &Pool2d, device: usize, input: &[f32], output: &mut [f32]) -> Result<()> {
    let (per_in, per_out) = (layer.input_size(), layer.output_size());
    let n = batch(input.len(), output.len(), per_in, per_out)?;
    let limit = launch_limit(per_in, per_out)?;
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            cuda::stream_batches(state, n, (per_in, per_out), input, output, limit, |state, x, y, count| {
                cuda::launch_pool(state, layer, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (n, limit);
            match *state {}
        }
    })
}

/// [`pool2d`] on device arrays (`input` n C H W values, `output` n C h_out w_out); errors as
/// [`conv2d_device`].
///
/// # Safety
/// As [`conv2d_device`].
pub unsafe fn pool2d_device(layer: &Pool2d, device: usize, input: u64, output: u64, n: usize) -> Result<()> {
    let (per_in, per_out) = (layer.input_size(), layer.output_size());
    let limit = launch_limit(per_in, per_out)?;
    device_arrays(input, n.saturating_mul(per_in), output, n.saturating_mul(per_out))?;
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            cuda::device_batches(state, n, (per_in, per_out), (input, output), limit, |state, x, y, count| {
                cuda::launch_pool(state, layer, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = limit;
            match *state {}
        }
    })
}

/// Planes of one global-average-pooling launch: the kernel's thread index (32 per plane)
/// stays in 32 bits.
const GLOBAL_POOL_PLANES: usize = MAX_INDEX / 64;

/// [`crate::nn::pool::global_avgpool`] on device `device`: `input` [planes][plane] to
/// `output` [planes], output = sum (in f64) / plane.
///
/// Errors: InvalidArgument (plane = 0, lengths disagree, plane over 2^31 - 4096), else as
/// [`conv2d`].
pub fn global_avgpool(device: usize, input: &[f32], plane: usize, output: &mut [f32]) -> Result<()> {
    if plane == 0 {
        return Err(Error::InvalidArgument("global average pooling: plane must be >= 1".into()));
    }
    let planes = batch(input.len(), output.len(), plane, 1)?;
    let limit = launch_limit(plane, 1)?.min(GLOBAL_POOL_PLANES);
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            cuda::stream_batches(state, planes, (plane, 1), input, output, limit, |state, x, y, count| {
                cuda::launch_global_avgpool(state, plane, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (planes, limit);
            match *state {}
        }
    })
}

/// [`global_avgpool`] on device arrays: `input` holds planes x plane values, `output` planes.
/// Errors as [`conv2d_device`].
///
/// # Safety
/// As [`conv2d_device`].
pub unsafe fn global_avgpool_device(
    device: usize,
    input: u64,
    plane: usize,
    output: u64,
    planes: usize,
) -> Result<()> {
    if plane == 0 {
        return Err(Error::InvalidArgument("global average pooling: plane must be >= 1".into()));
    }
    let limit = launch_limit(plane, 1)?.min(GLOBAL_POOL_PLANES);
    device_arrays(input, planes.saturating_mul(plane), output, planes)?;
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            cuda::device_batches(state, planes, (plane, 1), (input, output), limit, |state, x, y, count| {
                cuda::launch_global_avgpool(state, plane, x, y, count)
            })
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = limit;
            match *state {}
        }
    })
}

/// The FP32 FMA rate of device `device` [FLOP/s, 2 per FMA], measured: every SM busy with
/// independent FMA chains for tens of ms (for the fraction of peak a benchmark reports).
///
/// Errors: NoDevice, Device.
pub fn fp32_fma_peak(device: usize) -> Result<f64> {
    on_device(device, |state| {
        #[cfg(feature = "cuda")]
        {
            cuda::fma_peak(state)
        }
        #[cfg(not(feature = "cuda"))]
        {
            match *state {}
        }
    })
}

#[cfg(feature = "cuda")]
mod cuda {
    use cudarc::driver::sys::CUevent_flags;
    use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, LaunchConfig, PushKernelArg};

    use super::super::cuda::device_error;
    use super::super::{DeviceState, Kernels};
    use super::MAX_CHUNK_SAMPLES;
    use crate::nn::conv::Conv2d;
    use crate::nn::pool::{Pool2d, PoolKind};
    use crate::{Error, Result};

    /// Positions per convolution block (the tiles' BN; 128 threads, one column each).
    const TILE_POSITIONS: usize = 128;
    /// Output channels per block of the two convolution kernels.
    const TILE_CHANNELS_LARGE: usize = 64;
    const TILE_CHANNELS_SMALL: usize = 32;
    /// Threads per block of the pooling kernels.
    const POOL_THREADS: u32 = 256;

    /// kernels/conv.cu's ConvShape.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    struct ConvShape {
        c_in: i32,
        h: i32,
        w: i32,
        h_out: i32,
        w_out: i32,
        c_out: i32,
        m_group: i32,
        k: i32,
        stride_h: i32,
        stride_w: i32,
        pad_top: i32,
        pad_left: i32,
        columns: i32,
    }

    // SAFETY: plain old data with the layout of the C struct.
    unsafe impl DeviceRepr for ConvShape {}

    /// kernels/conv.cu's PoolShape.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    struct PoolShape {
        h: i32,
        w: i32,
        h_out: i32,
        w_out: i32,
        kernel_h: i32,
        kernel_w: i32,
        stride_h: i32,
        stride_w: i32,
        pad_top: i32,
        pad_left: i32,
        planes: i32,
        is_max: i32,
        count_include_pad: i32,
    }

    // SAFETY: plain old data with the layout of the C struct.
    unsafe impl DeviceRepr for PoolShape {}

    /// A size the host checked against MAX_INDEX, as the kernels' int.
    fn int(value: usize, what: &str) -> Result<i32> {
        i32::try_from(value).map_err(|_| {
            Error::InvalidArgument(format!("{what} = {value} exceeds the GPU kernels' 2^31 - 1"))
        })
    }

    /// A layer's constants on the device: weights per group k-major [G][K][Mg], bias [c_out],
    /// and the patch table [K] of (c h w, i dH, j dW, 0) for k = (c, i, j).
    pub(super) struct ConvWeights {
        weight: CudaSlice<f32>,
        bias: CudaSlice<f32>,
        k_table: CudaSlice<i32>,
    }

    impl ConvWeights {
        pub(super) fn upload(state: &DeviceState, layer: &Conv2d) -> Result<Self> {
            let groups = layer.params().groups;
            let (c_in_group, m_group) = (layer.c_in() / groups, layer.c_out() / groups);
            let [kh, kw] = layer.kernel_hw();
            let [h, w] = layer.input_hw();
            let [dh, dw] = layer.params().dilation;
            let k = c_in_group * kh * kw;
            let (weight, bias) = layer.weight_and_bias();
            // [c_out][K] (o = g Mg + m) to [G][K][Mg].
            let mut transposed = vec![0.0f32; weight.len()];
            for (o, row) in weight.chunks_exact(k).enumerate() {
                let (g, m) = (o / m_group, o % m_group);
                for (kk, &v) in row.iter().enumerate() {
                    transposed[(g * k + kk) * m_group + m] = v;
                }
            }
            let mut table = Vec::with_capacity(4 * k);
            for c in 0..c_in_group {
                for i in 0..kh {
                    for j in 0..kw {
                        table.extend([
                            int(c * h * w, "channel offset")?,
                            int(i * dh, "dilated kernel row")?,
                            int(j * dw, "dilated kernel column")?,
                            0,
                        ]);
                    }
                }
            }
            let stream = &state.stream;
            Ok(Self {
                weight: stream.clone_htod(&transposed).map_err(device_error("uploading the weights"))?,
                bias: stream.clone_htod(bias).map_err(device_error("uploading the bias"))?,
                k_table: stream.clone_htod(&table).map_err(device_error("uploading the patch table"))?,
            })
        }
    }

    /// One convolution launch on `count` samples at device addresses `input`, `output`.
    pub(super) fn launch_conv(
        state: &mut DeviceState,
        layer: &Conv2d,
        weights: &ConvWeights,
        input: u64,
        output: u64,
        count: usize,
    ) -> Result<()> {
        let params = layer.params();
        let groups = params.groups;
        let m_group = layer.c_out() / groups;
        let [h, w] = layer.input_hw();
        let [h_out, w_out] = layer.output_hw();
        let [kh, kw] = layer.kernel_hw();
        let k = layer.c_in() / groups * kh * kw;
        let columns = count * h_out * w_out;
        let shape = ConvShape {
            c_in: int(layer.c_in(), "c_in")?,
            h: int(h, "h")?,
            w: int(w, "w")?,
            h_out: int(h_out, "h_out")?,
            w_out: int(w_out, "w_out")?,
            c_out: int(layer.c_out(), "c_out")?,
            m_group: int(m_group, "c_out / groups")?,
            k: int(k, "c_in / groups x kh x kw")?,
            stride_h: int(params.stride[0], "stride")?,
            stride_w: int(params.stride[1], "stride")?,
            pad_top: int(params.padding[0][0], "padding")?,
            pad_left: int(params.padding[1][0], "padding")?,
            columns: int(columns, "samples x output positions")?,
        };
        let (name, tile_channels) = if m_group > TILE_CHANNELS_SMALL {
            ("conv2d_igemm_64x128", TILE_CHANNELS_LARGE)
        } else {
            ("conv2d_igemm_32x128", TILE_CHANNELS_SMALL)
        };
        let function = state.function(Kernels::Conv, name)?;
        let config = LaunchConfig {
            grid_dim: (
                columns.div_ceil(TILE_POSITIONS) as u32,
                int(m_group.div_ceil(tile_channels), "channel tiles")? as u32,
                groups as u32,
            ),
            block_dim: (TILE_POSITIONS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let stream = &state.stream;
        let (weight, _w) = weights.weight.device_ptr(stream);
        let (bias, _b) = weights.bias.device_ptr(stream);
        let (k_table, _k) = weights.k_table.device_ptr(stream);
        // SAFETY: the arguments match conv2d_igemm_*'s signature; the addresses hold the
        // sizes the shape describes (checked by the callers), indices fit in 32 bits.
        unsafe {
            stream
                .launch_builder(&function)
                .arg(&input)
                .arg(&weight)
                .arg(&bias)
                .arg(&k_table)
                .arg(&output)
                .arg(&shape)
                .launch(config)
        }
        .map_err(device_error("launching the convolution kernel"))?;
        Ok(())
    }

    /// One pooling launch on `count` samples.
    pub(super) fn launch_pool(
        state: &mut DeviceState,
        layer: &Pool2d,
        input: u64,
        output: u64,
        count: usize,
    ) -> Result<()> {
        let [h, w] = layer.input_hw();
        let [h_out, w_out] = layer.output_hw();
        let (kernel, stride, padding) = (layer.kernel(), layer.stride(), layer.padding());
        let planes = count * layer.channels();
        let cells = planes * h_out * w_out;
        let (is_max, count_include_pad) = match layer.kind() {
            PoolKind::Max => (1, 0),
            PoolKind::Average { count_include_pad } => (0, i32::from(count_include_pad)),
        };
        let shape = PoolShape {
            h: int(h, "h")?,
            w: int(w, "w")?,
            h_out: int(h_out, "h_out")?,
            w_out: int(w_out, "w_out")?,
            kernel_h: int(kernel[0], "kernel")?,
            kernel_w: int(kernel[1], "kernel")?,
            stride_h: int(stride[0], "stride")?,
            stride_w: int(stride[1], "stride")?,
            pad_top: int(padding[0][0], "padding")?,
            pad_left: int(padding[1][0], "padding")?,
            planes: int(planes, "samples x channels")?,
            is_max,
            count_include_pad,
        };
        let function = state.function(Kernels::Conv, "pool2d")?;
        let config = LaunchConfig {
            grid_dim: (int(cells, "output cells")?.unsigned_abs().div_ceil(POOL_THREADS), 1, 1),
            block_dim: (POOL_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match pool2d's signature; sizes checked by the callers.
        unsafe { state.stream.launch_builder(&function).arg(&input).arg(&output).arg(&shape).launch(config) }
            .map_err(device_error("launching the pooling kernel"))?;
        Ok(())
    }

    /// One global-average-pooling launch on `count` planes of `plane` values.
    pub(super) fn launch_global_avgpool(
        state: &mut DeviceState,
        plane: usize,
        input: u64,
        output: u64,
        count: usize,
    ) -> Result<()> {
        let (planes, plane) = (int(count, "planes")?, int(plane, "plane")?);
        let warps_per_block = POOL_THREADS / 32;
        let function = state.function(Kernels::Conv, "global_avgpool")?;
        let config = LaunchConfig {
            grid_dim: (planes.unsigned_abs().div_ceil(warps_per_block), 1, 1),
            block_dim: (POOL_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments match global_avgpool's signature; sizes checked by the callers.
        unsafe {
            state
                .stream
                .launch_builder(&function)
                .arg(&input)
                .arg(&output)
                .arg(&planes)
                .arg(&plane)
                .launch(config)
        }
        .map_err(device_error("launching the global average pooling kernel"))?;
        Ok(())
    }

    /// Samples per host-array chunk: at most `limit` (index range), the user's cap, and what
    /// half of the free device memory holds; Device when not even one sample fits.
    fn chunk_samples(state: &DeviceState, n: usize, bytes_per_sample: usize, limit: usize) -> Result<usize> {
        let free = state.free_bytes()?;
        let fits = free / 2 / bytes_per_sample.max(1);
        if fits == 0 {
            return Err(Error::Device(format!(
                "out of device memory: one sample needs {bytes_per_sample} bytes of input and output, {free} bytes are free"
            )));
        }
        let mut chunk = n.min(limit).min(fits);
        let cap = MAX_CHUNK_SAMPLES.load(std::sync::atomic::Ordering::Relaxed);
        if cap > 0 {
            chunk = chunk.min(cap);
        }
        Ok(chunk.max(1))
    }

    /// Streams a host batch of `n` samples (`per` = values per input, output sample) through
    /// device buffers: per chunk, upload, `launch(state, input address, output address,
    /// samples)`, download. Returns when the output is written.
    pub(super) fn stream_batches(
        state: &mut DeviceState,
        n: usize,
        (per_in, per_out): (usize, usize),
        input: &[f32],
        output: &mut [f32],
        limit: usize,
        mut launch: impl FnMut(&mut DeviceState, u64, u64, usize) -> Result<()>,
    ) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let chunk = chunk_samples(state, n, 4 * (per_in + per_out), limit)?;
        let stream = state.stream.clone();
        // SAFETY (both): every value read from these buffers is first written by an upload
        // or a kernel.
        let mut device_input = unsafe { stream.alloc::<f32>(chunk * per_in) }
            .map_err(device_error("allocating the input buffer"))?;
        let mut device_output = unsafe { stream.alloc::<f32>(chunk * per_out) }
            .map_err(device_error("allocating the output buffer"))?;
        for first in (0..n).step_by(chunk) {
            let count = chunk.min(n - first);
            let host_input = &input[first * per_in..(first + count) * per_in];
            stream
                .memcpy_htod(host_input, &mut device_input.slice_mut(..count * per_in))
                .map_err(device_error("copying the input to the device"))?;
            {
                let (x, _x) = device_input.device_ptr(&stream);
                let (y, _y) = device_output.device_ptr_mut(&stream);
                launch(state, x, y, count)?;
            }
            let host_output = &mut output[first * per_out..(first + count) * per_out];
            stream
                .memcpy_dtoh(&device_output.slice(..count * per_out), host_output)
                .map_err(device_error("copying the output from the device"))?;
        }
        state.synchronize("running the GPU kernels")
    }

    /// Runs `launch` over a batch of `n` samples already on the device, `limit` samples at a
    /// time, and waits for it.
    pub(super) fn device_batches(
        state: &mut DeviceState,
        n: usize,
        (per_in, per_out): (usize, usize),
        (input, output): (u64, u64),
        limit: usize,
        mut launch: impl FnMut(&mut DeviceState, u64, u64, usize) -> Result<()>,
    ) -> Result<()> {
        for first in (0..n).step_by(limit.max(1)) {
            let count = limit.min(n - first);
            let x = input + 4 * (first * per_in) as u64;
            let y = output + 4 * (first * per_out) as u64;
            launch(state, x, y, count)?;
        }
        state.synchronize("running the GPU kernels")
    }

    /// FMA rounds per thread of the peak probe (16 x 8 FMAs each).
    const PEAK_ROUNDS: i32 = 1 << 16;

    /// The measured FP32 FMA rate [FLOP/s]: 8 blocks of 256 threads per SM, each thread
    /// 8 chains x 16 FMAs x PEAK_ROUNDS, timed with events after a warm-up launch.
    pub(super) fn fma_peak(state: &mut DeviceState) -> Result<f64> {
        let multiprocessors = state.info()?.multiprocessors.max(1) as u32;
        let (blocks, threads) = (8 * multiprocessors, 256u32);
        let function = state.function(Kernels::Conv, "fma_peak")?;
        let stream = state.stream.clone();
        let mut sink = stream
            .alloc_zeros::<f32>((blocks * threads) as usize)
            .map_err(device_error("allocating the probe"))?;
        let config =
            LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
        let seed = 1.0f32;
        let context = state.context.clone();
        let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let start = context.new_event(timing).map_err(device_error("creating an event"))?;
        let end = context.new_event(timing).map_err(device_error("creating an event"))?;
        let mut elapsed_ms = 0.0f32;
        for pass in 0..2 {
            start.record(&stream).map_err(device_error("recording an event"))?;
            // SAFETY: the arguments match fma_peak's signature; sink holds blocks x threads.
            unsafe {
                stream.launch_builder(&function).arg(&mut sink).arg(&PEAK_ROUNDS).arg(&seed).launch(config)
            }
            .map_err(device_error("launching the FMA probe"))?;
            end.record(&stream).map_err(device_error("recording an event"))?;
            end.synchronize().map_err(device_error("running the FMA probe"))?;
            if pass == 1 {
                elapsed_ms = start.elapsed_ms(&end).map_err(device_error("timing the FMA probe"))?;
            }
        }
        let flops = 2.0 * 16.0 * 8.0 * f64::from(PEAK_ROUNDS) * f64::from(blocks * threads);
        Ok(flops / (f64::from(elapsed_ms.max(1e-6)) * 1e-3))
    }
}
