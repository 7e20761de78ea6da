//! The CUDA side of the MADE GPU path: the device copy of a model, chunking, launches.

use std::sync::{Arc, Mutex};

use cudarc::driver::result::DriverError;
use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute, CUresult};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg, result};

use super::{GpuMade, max_chunk_rows};
use crate::gpu::cuda::device_error;
use crate::gpu::{DeviceState, Gpu, Kernels};
use crate::nn::dense::MaskedDense;
use crate::nn::{Activation, Made, ScaleHead, StageView};
use crate::{Error, Result};

/// Samples per tile of `made_dense` (buffers are padded to a multiple of it).
const GEMM_TILE: usize = 64;
/// Threads per block of `made_dense`.
const GEMM_THREADS: u32 = 256;
/// Threads (samples) per block of `made_sample`.
const SAMPLER_LANES: usize = 32;
/// Threads per block of the elementwise kernels.
const ELEMENTWISE_THREADS: u32 = 128;
/// Rows per chunk unless [`super::set_max_chunk_rows`] says otherwise.
const DEFAULT_MAX_ROWS: usize = 1 << 20;
/// Dynamic shared memory a kernel may use without opting in [bytes].
const DEFAULT_SHARED_BYTES: usize = 48 * 1024;

/// One compiled layer for `made_sample` (kernels/made.cu, struct StageDesc).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct StageDesc {
    weight: u64,
    bias: u64,
    row_prefix: u64,
    kind: i32,
    input: i32,
    uses_context: i32,
    activation: i32,
    residual: i32,
    units: i32,
    cols: i32,
    padding: i32,
}

// SAFETY: plain old data with the layout of kernels/made.cu's StageDesc.
unsafe impl DeviceRepr for StageDesc {}

/// The argument of `made_sample` (kernels/made.cu, struct SampleParams).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SampleParams {
    stages: u64,
    units_below: u64,
    head_weight: u64,
    head_bias: u64,
    head_prefix: u64,
    data_order: u64,
    context_order: u64,
    x_mean: u64,
    x_std: u64,
    context_mean: u64,
    context_std: u64,
    context: u64,
    given: u64,
    x_out: u64,
    seed: u64,
    first_sample: u64,
    epsilon: f64,
    n: i32,
    n_context: i32,
    n_dims: i32,
    n_components: i32,
    n_stages: i32,
    n_given: i32,
    scale_kind: i32,
    head_cols: i32,
}

// SAFETY: plain old data with the layout of kernels/made.cu's SampleParams.
unsafe impl DeviceRepr for SampleParams {}

/// The kernels' codes (kernels/made.cu).
const STAGE_DENSE: i32 = 0;
const STAGE_AFFINE: i32 = 1;

/// The kernels' code of an activation; leaky ReLU and ELU have none yet (kernels/made.cu and
/// its committed PTX would need them), so their models stay on the CPU.
fn activation_code(activation: Activation) -> Result<i32> {
    match activation {
        Activation::Identity => Ok(0),
        Activation::Sigmoid => Ok(1),
        Activation::Tanh => Ok(2),
        Activation::Relu => Ok(3),
        Activation::LeakyRelu | Activation::Elu => Err(Error::InvalidArgument(format!(
            "the GPU kernels do not implement the {} activation yet: evaluate this model on the CPU",
            activation.name()
        ))),
    }
}

/// (kind, epsilon) of the scale head: 0 for sigma = e^r, 1 for softplus(r) + epsilon.
fn scale_code(scale: ScaleHead) -> (i32, f64) {
    match scale {
        ScaleHead::Exp => (0, 0.0),
        ScaleHead::SoftplusPlus { epsilon } => (1, epsilon),
    }
}

/// A size as the kernels' int.
fn int(value: usize, what: &str) -> Result<i32> {
    i32::try_from(value)
        .map_err(|_| Error::InvalidArgument(format!("{what} = {value} is too large for the GPU kernels")))
}

/// The device address of a buffer.
fn address<T>(slice: &CudaSlice<T>, stream: &CudaStream) -> u64 {
    let (pointer, _sync) = slice.device_ptr(stream);
    pointer
}

/// Copies `values` to a new device buffer (one zero value when empty: no zero-size allocation).
fn upload<T: DeviceRepr + Copy + Default>(stream: &Arc<CudaStream>, values: &[T]) -> Result<CudaSlice<T>> {
    let fallback = [T::default()];
    let values = if values.is_empty() { &fallback[..] } else { values };
    stream.clone_htod(values).map_err(device_error("uploading the model"))
}

/// A dense layer on the device: weight [rows][cols], bias [rows], row prefixes [rows]; for an
/// affine layer the scale, the shift and one unused prefix.
struct LayerBuffers {
    weight: CudaSlice<f32>,
    bias: CudaSlice<f32>,
    row_prefix: CudaSlice<i32>,
    rows: usize,
    cols: usize,
}

impl LayerBuffers {
    fn dense(stream: &Arc<CudaStream>, layer: &MaskedDense) -> Result<Self> {
        let prefix =
            (0..layer.n_out()).map(|r| int(layer.prefix(r), "a row prefix")).collect::<Result<Vec<_>>>()?;
        Ok(LayerBuffers {
            weight: upload(stream, layer.weight())?,
            bias: upload(stream, layer.bias())?,
            row_prefix: upload(stream, &prefix)?,
            rows: layer.n_out(),
            cols: layer.n_in(),
        })
    }

    fn affine(stream: &Arc<CudaStream>, scale: &[f32], shift: &[f32]) -> Result<Self> {
        Ok(LayerBuffers {
            weight: upload(stream, scale)?,
            bias: upload(stream, shift)?,
            row_prefix: upload(stream, &[0i32])?,
            rows: scale.len(),
            cols: 1,
        })
    }
}

/// Everything of a model that lives on a device.
struct ModelBuffers {
    layers: Vec<LayerBuffers>,
    heads: LayerBuffers,
    stage_table: CudaSlice<StageDesc>,
    units_below: CudaSlice<i32>,
    data_order: CudaSlice<i32>,
    context_order: CudaSlice<i32>,
    /// x_mean, x_std, context_mean, context_std (internal order).
    standardization: [CudaSlice<f64>; 4],
}

impl ModelBuffers {
    fn upload(made: &Made, state: &DeviceState) -> Result<Self> {
        let stream = &state.stream;
        let mut layers = Vec::new();
        let mut table = Vec::new();
        let mut units_below = Vec::new();
        for (s, stage) in made.stages().enumerate() {
            let (layer, desc) = match stage {
                StageView::Dense { layer, input, uses_context, activation, residual } => {
                    let buffers = LayerBuffers::dense(stream, layer)?;
                    let desc = StageDesc {
                        kind: STAGE_DENSE,
                        input: int(input, "a layer's input")?,
                        uses_context: i32::from(uses_context),
                        activation: activation_code(activation)?,
                        residual: residual.map_or(Ok(-1), |r| int(r, "a residual buffer"))?,
                        units: int(layer.n_out(), "units")?,
                        cols: int(layer.n_in(), "columns")?,
                        ..StageDesc::default()
                    };
                    (buffers, desc)
                }
                StageView::Affine { input, scale, shift, activation } => {
                    let buffers = LayerBuffers::affine(stream, scale, shift)?;
                    let desc = StageDesc {
                        kind: STAGE_AFFINE,
                        input: int(input, "a layer's input")?,
                        activation: activation_code(activation)?,
                        residual: -1,
                        units: int(scale.len(), "units")?,
                        cols: 1,
                        ..StageDesc::default()
                    };
                    (buffers, desc)
                }
            };
            table.push(StageDesc {
                weight: address(&layer.weight, stream),
                bias: address(&layer.bias, stream),
                row_prefix: address(&layer.row_prefix, stream),
                ..desc
            });
            layers.push(layer);
            for count in made.units_below_dimension(s) {
                units_below.push(int(count, "units")?);
            }
        }
        let order = |values: &[usize]| values.iter().map(|&v| int(v, "an index")).collect::<Result<Vec<_>>>();
        let [x_mean, x_std, context_mean, context_std] = made.standardization();
        Ok(ModelBuffers {
            heads: LayerBuffers::dense(stream, made.heads())?,
            stage_table: upload(stream, &table)?,
            units_below: upload(stream, &units_below)?,
            data_order: upload(stream, &order(made.order())?)?,
            context_order: upload(stream, &order(made.context_order())?)?,
            standardization: [
                upload(stream, x_mean)?,
                upload(stream, x_std)?,
                upload(stream, context_mean)?,
                upload(stream, context_std)?,
            ],
            layers,
        })
    }
}

/// A model's buffers on one device, freed under the device's lock.
struct DeviceModel {
    gpu: Arc<Gpu>,
    buffers: Option<ModelBuffers>,
}

impl Drop for DeviceModel {
    fn drop(&mut self) {
        let buffers = self.buffers.take();
        // Freed on the device's stream with its context bound; a failure here has nowhere to go.
        let _ = self.gpu.with(move |_| {
            drop(buffers);
            Ok(())
        });
    }
}

/// The device copies of one model, by device ordinal.
#[derive(Default)]
pub(super) struct Uploads {
    per_device: Mutex<Vec<Option<Arc<DeviceModel>>>>,
}

impl Uploads {
    /// The model on the device of `state` (`gpu`), uploaded on first use.
    fn get(&self, made: &Made, gpu: &Arc<Gpu>, state: &DeviceState) -> Result<Arc<DeviceModel>> {
        let ordinal = state.context.ordinal();
        let mut slots = self.per_device.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.len() <= ordinal {
            slots.resize_with(ordinal + 1, || None);
        }
        if let Some(model) = &slots[ordinal] {
            return Ok(model.clone());
        }
        let model =
            Arc::new(DeviceModel { gpu: gpu.clone(), buffers: Some(ModelBuffers::upload(made, state)?) });
        slots[ordinal] = Some(model.clone());
        Ok(model)
    }
}

/// Where a call's input rows are.
pub(super) enum Rows<'a> {
    /// Host arrays, copied chunk by chunk (`x` empty for sampling).
    Host { context: &'a [f32], x: &'a [f32] },
    /// Device addresses (`x` 0 for sampling).
    Device { context: u64, x: u64 },
}

/// Where a call's results go.
pub(super) enum Out<'a> {
    /// A host array.
    Host(&'a mut [f32]),
    /// A device address.
    Device(u64),
}

/// What a sampling call draws.
pub(super) struct SampleJob<'a> {
    pub(super) seed: u64,
    pub(super) first_sample: u64,
    /// The given values [n][D] (user's space) and how many leading dimensions they fix.
    pub(super) given: Option<(&'a [f32], usize)>,
}

/// The first chunk size to try: at most half the free memory at `bytes_per_row`, the cap.
fn chunk_rows(state: &DeviceState, n: usize, bytes_per_row: usize) -> Result<usize> {
    let cap = match max_chunk_rows() {
        0 => DEFAULT_MAX_ROWS,
        rows => rows,
    };
    let affordable = state.free_bytes()? / 2 / bytes_per_row.max(1);
    Ok(n.min(cap).min(affordable.max(GEMM_TILE)).max(1))
}

/// Allocates with `make(rows)`, halving the rows while the device is out of memory.
fn allocate_chunk<T>(
    mut rows: usize,
    make: impl Fn(usize) -> std::result::Result<T, DriverError>,
) -> Result<(T, usize)> {
    loop {
        match make(rows) {
            Ok(value) => return Ok((value, rows)),
            Err(error) if error.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY && rows > GEMM_TILE => rows /= 2,
            Err(error) => return Err(device_error(&format!("allocating buffers for {rows} rows"))(error)),
        }
    }
}

/// The index of the first NaN or infinity among `count` f32 at device address `values`.
fn first_non_finite(state: &mut DeviceState, values: u64, count: usize) -> Result<Option<usize>> {
    if count == 0 {
        return Ok(None);
    }
    let function = state.function(Kernels::Made, "made_find_non_finite")?;
    let stream = state.stream.clone();
    let first = stream.clone_htod(&[u64::MAX]).map_err(device_error("checking the input"))?;
    let first_address = address(&first, &stream);
    let count = count as u64;
    let blocks = count.div_ceil(256).min(4096) as u32;
    let config = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
    // SAFETY: `values` holds `count` f32 (the caller's promise); `first` one u64.
    unsafe { stream.launch_builder(&function).arg(&values).arg(&count).arg(&first_address).launch(config) }
        .map_err(device_error("launching made_find_non_finite"))?;
    let found = stream.clone_dtoh(&first).map_err(device_error("checking the input"))?;
    state.synchronize("checking the input")?;
    Ok((found[0] != u64::MAX).then_some(found[0] as usize))
}

/// Rejects non-finite values of an [n][width] device array, naming the row and column.
fn check_device_input(
    state: &mut DeviceState,
    values: u64,
    n: usize,
    width: usize,
    name: &str,
) -> Result<()> {
    match first_non_finite(state, values, n * width)? {
        Some(i) => Err(Error::InvalidArgument(format!(
            "{name}[{}][{}] is NaN or infinite (must be finite)",
            i / width,
            i % width
        ))),
        None => Ok(()),
    }
}

/// The device buffers of one log-density chunk.
struct LogProbChunk {
    /// Per buffer: [n_context + units][stride].
    buffers: Vec<CudaSlice<f32>>,
    /// [D * 3K][stride].
    heads: CudaSlice<f32>,
    /// Host-array calls: x [rows][D], context [rows][C], log_prob [rows].
    staging: Option<[CudaSlice<f32>; 3]>,
    overflow: CudaSlice<u64>,
}

/// log p(x | context) of every row (see GpuMade::log_prob and log_prob_device).
pub(super) fn log_prob(
    model: &GpuMade,
    gpu: &Arc<Gpu>,
    rows: Rows<'_>,
    n: usize,
    mut out: Out<'_>,
) -> Result<()> {
    let made = &model.made;
    let (c, d, k) = (made.n_context(), made.n_dims(), made.n_components());
    gpu.with(|state| {
        let device = model.uploads.get(made, gpu, state)?;
        let Some(buffers) = device.buffers.as_ref() else {
            return Err(Error::Device("the model's device buffers were released".into()));
        };
        if let Rows::Device { context, x } = rows {
            check_device_input(state, context, n, c, "context")?;
            check_device_input(state, x, n, d, "x")?;
        }
        let buffer_rows: Vec<usize> = made.buffer_degrees().iter().map(|degrees| c + degrees.len()).collect();
        let head_rows = 3 * k * d;
        let host = matches!(rows, Rows::Host { .. });
        let staging_per_row = if host { c + d + 1 } else { 0 };
        let bytes_per_row = 4 * (buffer_rows.iter().sum::<usize>() + head_rows + staging_per_row);
        let stream = state.stream.clone();
        let (chunk, rows_per_chunk) = allocate_chunk(chunk_rows(state, n, bytes_per_row)?, |rows| {
            let stride = rows.next_multiple_of(GEMM_TILE);
            Ok(LogProbChunk {
                buffers: buffer_rows
                    .iter()
                    .map(|&r| stream.alloc_zeros::<f32>(r * stride))
                    .collect::<std::result::Result<_, _>>()?,
                heads: stream.alloc_zeros::<f32>(head_rows * stride)?,
                staging: if host {
                    Some([
                        stream.alloc_zeros::<f32>(rows * d)?,
                        stream.alloc_zeros::<f32>((rows * c).max(1))?,
                        stream.alloc_zeros::<f32>(rows)?,
                    ])
                } else {
                    None
                },
                overflow: stream.alloc_zeros::<u64>(1)?,
            })
        })?;
        let LogProbChunk { buffers: activations, heads, mut staging, mut overflow } = chunk;
        let buffer_addresses: Vec<u64> = activations.iter().map(|b| address(b, &stream)).collect();
        let heads_address = address(&heads, &stream);
        let overflow_address = address(&overflow, &stream);
        let mut overflow_row = None;
        let mut first = 0;
        while first < n {
            let m = rows_per_chunk.min(n - first);
            let stride = m.next_multiple_of(GEMM_TILE);
            let (x_address, context_address, out_address) = match (&rows, &mut staging) {
                (Rows::Host { context, x }, Some([x_stage, context_stage, out_stage])) => {
                    let copy = device_error("copying the input to the device");
                    stream
                        .memcpy_htod(&x[first * d..(first + m) * d], &mut x_stage.slice_mut(0..m * d))
                        .map_err(copy)?;
                    if c > 0 {
                        stream
                            .memcpy_htod(
                                &context[first * c..(first + m) * c],
                                &mut context_stage.slice_mut(0..m * c),
                            )
                            .map_err(device_error("copying the context to the device"))?;
                    }
                    (address(x_stage, &stream), address(context_stage, &stream), address(out_stage, &stream))
                }
                (Rows::Device { context, x }, _) => {
                    let out_base = match out {
                        Out::Device(base) => base,
                        Out::Host(_) => return Err(Error::Device("host output for device input".into())),
                    };
                    (
                        x + (4 * first * d) as u64,
                        if c > 0 { context + (4 * first * c) as u64 } else { 0 },
                        out_base + (4 * first) as u64,
                    )
                }
                (Rows::Host { .. }, None) => {
                    return Err(Error::Device("host input without staging buffers".into()));
                }
            };
            stream
                .memcpy_htod(&[u64::MAX], &mut overflow)
                .map_err(device_error("resetting the overflow flag"))?;
            let launch = Launch { stream: &stream, m: int(m, "rows")?, stride: int(stride, "rows")? };
            launch.standardize(state, buffers, made, x_address, context_address, buffer_addresses[0])?;
            for &target in &buffer_addresses[1..] {
                if c > 0 {
                    // SAFETY: both buffers hold at least c * stride f32 (their context rows).
                    unsafe {
                        result::memcpy_dtod_async(
                            target,
                            buffer_addresses[0],
                            4 * c * stride,
                            stream.cu_stream(),
                        )
                    }
                    .map_err(device_error("copying the context rows"))?;
                }
            }
            let context_rows = (4 * c * stride) as u64;
            for (s, stage) in made.stages().enumerate() {
                let output = buffer_addresses[s + 1] + context_rows;
                let layer = &buffers.layers[s];
                match stage {
                    StageView::Dense { input, uses_context, activation, residual, .. } => {
                        let source = buffer_addresses[input] + if uses_context { 0 } else { context_rows };
                        let skip = residual.map_or(0, |r| buffer_addresses[r] + context_rows);
                        launch.dense(state, layer, source, activation_code(activation)?, skip, output)?;
                    }
                    StageView::Affine { input, activation, .. } => {
                        launch.affine(
                            state,
                            layer,
                            buffer_addresses[input] + context_rows,
                            activation_code(activation)?,
                            output,
                        )?;
                    }
                }
            }
            let last = buffer_addresses[buffer_addresses.len() - 1] + context_rows;
            launch.dense(state, &buffers.heads, last, 0, 0, heads_address)?;
            launch.mixture(state, buffers, made, heads_address, x_address, out_address, overflow_address)?;
            if let (Out::Host(values), Some([_, _, out_stage])) = (&mut out, &staging) {
                stream
                    .memcpy_dtoh(&out_stage.slice(0..m), &mut values[first..first + m])
                    .map_err(device_error("copying log-densities to the host"))?;
            }
            let flag = stream.clone_dtoh(&overflow).map_err(device_error("reading the overflow flag"))?;
            state.synchronize("computing log-densities")?;
            if flag[0] != u64::MAX {
                overflow_row.get_or_insert(first + flag[0] as usize);
            }
            first += m;
        }
        if let Some(row) = overflow_row {
            match &mut out {
                Out::Host(values) => values.fill(f32::NAN),
                Out::Device(base) => {
                    // SAFETY: the caller's log_prob holds n f32; all-ones bytes are a NaN.
                    unsafe { result::memset_d8_async(*base, 0xff, 4 * n, stream.cu_stream()) }
                        .map_err(device_error("filling log_prob with NaN"))?;
                    state.synchronize("filling log_prob with NaN")?;
                }
            }
            return Err(Error::OutOfDomain(format!(
                "x row {row}: the network's f32 outputs overflow for this input"
            )));
        }
        Ok(())
    })
}

/// The launches of one chunk of m rows, buffers `stride` samples wide.
struct Launch<'a> {
    stream: &'a Arc<CudaStream>,
    m: i32,
    stride: i32,
}

impl Launch<'_> {
    fn standardize(
        &self,
        state: &mut DeviceState,
        buffers: &ModelBuffers,
        made: &Made,
        x: u64,
        context: u64,
        buffer0: u64,
    ) -> Result<()> {
        let function = state.function(Kernels::Made, "made_standardize")?;
        let s = self.stream;
        let (d, c) = (int(made.n_dims(), "n_dims")?, int(made.n_context(), "n_context")?);
        let [x_mean, x_std, c_mean, c_std] = buffers.standardization.each_ref().map(|b| address(b, s));
        let (data_order, context_order) =
            (address(&buffers.data_order, s), address(&buffers.context_order, s));
        let config = elementwise(self.stride as usize);
        // SAFETY: every address holds what made_standardize reads or writes for m rows.
        unsafe {
            s.launch_builder(&function)
                .arg(&x)
                .arg(&context)
                .arg(&self.m)
                .arg(&self.stride)
                .arg(&d)
                .arg(&c)
                .arg(&data_order)
                .arg(&x_mean)
                .arg(&x_std)
                .arg(&context_order)
                .arg(&c_mean)
                .arg(&c_std)
                .arg(&buffer0)
                .launch(config)
        }
        .map_err(device_error("launching made_standardize"))?;
        Ok(())
    }

    fn dense(
        &self,
        state: &mut DeviceState,
        layer: &LayerBuffers,
        input: u64,
        activation: i32,
        residual: u64,
        output: u64,
    ) -> Result<()> {
        if layer.rows == 0 {
            return Ok(());
        }
        let function = state.function(Kernels::Made, "made_dense")?;
        let s = self.stream;
        let (weight, bias, prefix) =
            (address(&layer.weight, s), address(&layer.bias, s), address(&layer.row_prefix, s));
        let (rows, cols) = (int(layer.rows, "rows")?, int(layer.cols, "columns")?);
        let config = LaunchConfig {
            grid_dim: ((self.stride as usize / GEMM_TILE) as u32, layer.rows.div_ceil(GEMM_TILE) as u32, 1),
            block_dim: (GEMM_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the layer's buffers and the activations are sized for stride samples.
        unsafe {
            s.launch_builder(&function)
                .arg(&weight)
                .arg(&bias)
                .arg(&prefix)
                .arg(&rows)
                .arg(&cols)
                .arg(&input)
                .arg(&self.stride)
                .arg(&activation)
                .arg(&residual)
                .arg(&output)
                .launch(config)
        }
        .map_err(device_error("launching made_dense"))?;
        Ok(())
    }

    fn affine(
        &self,
        state: &mut DeviceState,
        layer: &LayerBuffers,
        input: u64,
        activation: i32,
        output: u64,
    ) -> Result<()> {
        let function = state.function(Kernels::Made, "made_affine")?;
        let s = self.stream;
        let (scale, shift) = (address(&layer.weight, s), address(&layer.bias, s));
        let units = int(layer.rows, "units")?;
        let config = elementwise(layer.rows * self.stride as usize);
        // SAFETY: as for dense.
        unsafe {
            s.launch_builder(&function)
                .arg(&scale)
                .arg(&shift)
                .arg(&units)
                .arg(&input)
                .arg(&self.stride)
                .arg(&activation)
                .arg(&output)
                .launch(config)
        }
        .map_err(device_error("launching made_affine"))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn mixture(
        &self,
        state: &mut DeviceState,
        buffers: &ModelBuffers,
        made: &Made,
        heads: u64,
        x: u64,
        out: u64,
        overflow: u64,
    ) -> Result<()> {
        let function = state.function(Kernels::Made, "made_mixture_log_prob")?;
        let s = self.stream;
        let (d, k) = (int(made.n_dims(), "n_dims")?, int(made.n_components(), "n_components")?);
        let (scale_kind, epsilon) = scale_code(made.scale_head());
        let log_jacobian = made.log_jacobian();
        let data_order = address(&buffers.data_order, s);
        let (x_mean, x_std) =
            (address(&buffers.standardization[0], s), address(&buffers.standardization[1], s));
        let config = elementwise(self.m as usize);
        // SAFETY: heads holds D * 3K rows of stride samples; x, out m rows.
        unsafe {
            s.launch_builder(&function)
                .arg(&heads)
                .arg(&self.stride)
                .arg(&x)
                .arg(&self.m)
                .arg(&d)
                .arg(&k)
                .arg(&data_order)
                .arg(&x_mean)
                .arg(&x_std)
                .arg(&scale_kind)
                .arg(&epsilon)
                .arg(&log_jacobian)
                .arg(&out)
                .arg(&overflow)
                .launch(config)
        }
        .map_err(device_error("launching made_mixture_log_prob"))?;
        Ok(())
    }
}

/// One thread per item, ELEMENTWISE_THREADS per block.
fn elementwise(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (items.div_ceil(ELEMENTWISE_THREADS as usize).max(1) as u32, 1, 1),
        block_dim: (ELEMENTWISE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Draws every row (see GpuMade::sample, sample_given and sample_device).
pub(super) fn sample(
    model: &GpuMade,
    gpu: &Arc<Gpu>,
    rows: Rows<'_>,
    n: usize,
    job: SampleJob<'_>,
    mut out: Out<'_>,
) -> Result<()> {
    let made = &model.made;
    let (c, d, k) = (made.n_context(), made.n_dims(), made.n_components());
    gpu.with(|state| {
        let device = model.uploads.get(made, gpu, state)?;
        let Some(buffers) = device.buffers.as_ref() else {
            return Err(Error::Device("the model's device buffers were released".into()));
        };
        if let Rows::Device { context, .. } = rows {
            check_device_input(state, context, n, c, "context")?;
        }
        let function = state.function(Kernels::Made, "made_sample")?;
        let rows_per_sample =
            made.buffer_degrees().iter().map(|degrees| c + degrees.len()).sum::<usize>() + 3 * k;
        let shared_bytes = 4 * rows_per_sample * SAMPLER_LANES;
        if shared_bytes > DEFAULT_SHARED_BYTES {
            let allowed = state
                .context
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
                .map_err(device_error("reading the shared-memory limit"))?;
            if shared_bytes > allowed.max(0) as usize {
                return Err(Error::InvalidArgument(format!(
                    "the model is too large for the GPU sampler: {shared_bytes} bytes of shared memory per \
                     {SAMPLER_LANES} samples, the device allows {allowed}"
                )));
            }
            function
                .set_attribute(
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    int(shared_bytes, "shared memory")?,
                )
                .map_err(device_error("allowing the sampler's shared memory"))?;
        }
        let stream = state.stream.clone();
        let host = matches!(rows, Rows::Host { .. });
        let given_width = if job.given.is_some() { d } else { 0 };
        let bytes_per_row = if host { 4 * (c + d + given_width) } else { 0 };
        let (staging, rows_per_chunk) = allocate_chunk(chunk_rows(state, n, bytes_per_row)?, |rows| {
            Ok(if host {
                Some([
                    stream.alloc_zeros::<f32>((rows * c).max(1))?,
                    stream.alloc_zeros::<f32>((rows * given_width).max(1))?,
                    stream.alloc_zeros::<f32>(rows * d)?,
                ])
            } else {
                None
            })
        })?;
        let mut staging = staging;
        let (scale_kind, epsilon) = scale_code(made.scale_head());
        let [x_mean, x_std, context_mean, context_std] =
            buffers.standardization.each_ref().map(|b| address(b, &stream));
        let mut first = 0;
        while first < n {
            let m = rows_per_chunk.min(n - first);
            let (context_address, given_address, out_address) = match (&rows, &mut staging) {
                (Rows::Host { context, .. }, Some([context_stage, given_stage, out_stage])) => {
                    if c > 0 {
                        stream
                            .memcpy_htod(
                                &context[first * c..(first + m) * c],
                                &mut context_stage.slice_mut(0..m * c),
                            )
                            .map_err(device_error("copying the context to the device"))?;
                    }
                    let given_address = match job.given {
                        Some((values, _)) => {
                            stream
                                .memcpy_htod(
                                    &values[first * d..(first + m) * d],
                                    &mut given_stage.slice_mut(0..m * d),
                                )
                                .map_err(device_error("copying the given values to the device"))?;
                            address(given_stage, &stream)
                        }
                        None => 0,
                    };
                    (address(context_stage, &stream), given_address, address(out_stage, &stream))
                }
                (Rows::Device { context, .. }, _) => {
                    let out_base = match out {
                        Out::Device(base) => base,
                        Out::Host(_) => return Err(Error::Device("host output for device input".into())),
                    };
                    (
                        if c > 0 { context + (4 * first * c) as u64 } else { 0 },
                        0,
                        out_base + (4 * first * d) as u64,
                    )
                }
                (Rows::Host { .. }, None) => {
                    return Err(Error::Device("host input without staging buffers".into()));
                }
            };
            let params = SampleParams {
                stages: address(&buffers.stage_table, &stream),
                units_below: address(&buffers.units_below, &stream),
                head_weight: address(&buffers.heads.weight, &stream),
                head_bias: address(&buffers.heads.bias, &stream),
                head_prefix: address(&buffers.heads.row_prefix, &stream),
                data_order: address(&buffers.data_order, &stream),
                context_order: address(&buffers.context_order, &stream),
                x_mean,
                x_std,
                context_mean,
                context_std,
                context: context_address,
                given: given_address,
                x_out: out_address,
                seed: job.seed,
                first_sample: job.first_sample.wrapping_add(first as u64),
                epsilon,
                n: int(m, "rows")?,
                n_context: int(c, "n_context")?,
                n_dims: int(d, "n_dims")?,
                n_components: int(k, "n_components")?,
                n_stages: int(buffers.layers.len(), "layers")?,
                n_given: int(job.given.map_or(0, |(_, count)| count), "given dimensions")?,
                scale_kind,
                head_cols: int(buffers.heads.cols, "hidden units")?,
            };
            let config = LaunchConfig {
                grid_dim: (int(m.div_ceil(SAMPLER_LANES), "blocks")? as u32, 1, 1),
                block_dim: (SAMPLER_LANES as u32, 1, 1),
                shared_mem_bytes: shared_bytes as u32,
            };
            // SAFETY: params holds the model's buffers and m rows of context, given and x_out.
            unsafe { stream.launch_builder(&function).arg(&params).launch(config) }
                .map_err(device_error("launching made_sample"))?;
            if let (Out::Host(values), Some([_, _, out_stage])) = (&mut out, &staging) {
                stream
                    .memcpy_dtoh(&out_stage.slice(0..m * d), &mut values[first * d..(first + m) * d])
                    .map_err(device_error("copying samples to the host"))?;
            }
            state.synchronize("drawing samples")?;
            first += m;
        }
        Ok(())
    })
}
