//! The stochastic ensemble on a GPU (kernels/ensemble.cu): realisation k of seed s is the
//! CPU's realisation k (the same sources from the same Philox stream), summed from the flat
//! tables of [`DeviceTables`]; it agrees with [`Ensemble::realisation`] to about 1e-13
//! relative (tests/ensemble_gpu.rs). An ensemble of the f32 tier ([`Precision::F32`]) runs the
//! kernel's f32 form: binary32 polynomials and the SFU's exp for the plain cells, summed in
//! binary64, within the tier's 1e-5 of the exact realisations (its tables: 4.4e-7 at worst in
//! the tests); a realisation whose flushed terms could move an energy by 1e-7 goes to the host.
//!
//! The host draws each realisation's number of young sources (one Poisson or binomial draw,
//! [`Ensemble::realisation_start`]) while the GPU sums the previous chunk; the GPU draws the
//! sources and sums them. As on the CPU, the sources are drawn in age-bin order, so nothing is
//! sorted: one word per source gives its age bin, a histogram of those and its scan give each
//! bin's slots, and the source in slot j takes words 2j and 2j + 1 of those that follow, its
//! position in its bin and its distance uniform. A realisation the GPU cannot finish (a source
//! in a [`crate::physics::ensemble::CellForm::Host`] cell: well under 1 in 200 realisations in
//! the tests) is flagged and computed on the CPU. Realisations stream through the device in
//! chunks, so the device memory needed does not grow with their number.

use std::sync::OnceLock;

#[cfg(doc)]
use crate::physics::ensemble::Precision;
use crate::physics::ensemble::{DeviceTables, Ensemble};
use crate::{Error, Result};

#[cfg(feature = "cuda")]
use super::Gpu;

/// Realisations per chunk (at most; 19 energies take 10 MB of flux per chunk).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const CHUNK_REALISATIONS: usize = 1 << 16;
/// Flux values per chunk (at most): a long energy grid gets fewer realisations per chunk, so
/// that the chunk's flux (device buffer and host staging) stays within 128 MiB.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const CHUNK_FLUX_VALUES: usize = 1 << 24;
/// Blocks of a launch (each loops over realisations): enough to fill an H100 several times;
/// each holds scratch for one realisation's sources.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const MAX_BLOCKS: usize = 2048;
/// Age bins the kernel's shared histogram holds (MAX_BINS in kernels/ensemble.cu).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const MAX_BINS: usize = 8192;
/// Energies per kernel pass (ENERGIES_PER_PASS in kernels/ensemble.cu).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const ENERGIES_PER_PASS: usize = 20;

/// An [`Ensemble`] with its GPU tables, built on first use and kept for later calls.
#[derive(Debug)]
pub struct GpuEnsemble {
    ensemble: Ensemble,
    tables: OnceLock<DeviceTables>,
}

/// What a GPU run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuRun {
    /// Realisations computed on the CPU instead (see the module documentation).
    pub on_host: usize,
}

impl GpuEnsemble {
    /// Wraps an ensemble; its tables are built on first use (tens of milliseconds).
    pub fn new(ensemble: Ensemble) -> Self {
        GpuEnsemble { ensemble, tables: OnceLock::new() }
    }

    /// The ensemble.
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// The flat tables the kernel reads.
    pub fn tables(&self) -> &DeviceTables {
        self.tables.get_or_init(|| self.ensemble.device_tables())
    }

    /// Realisations first..first + n of seed `seed` on GPU `device` into `flux`
    /// ([n][energies], row-major), as [`crate::parallel::ParallelEnsemble::generate`] computes
    /// them on the CPU.
    ///
    /// Errors: `flux` of the wrong length (InvalidArgument); no such device or no GPU support
    /// (NoDevice); a driver error or out of device memory (Device).
    pub fn generate(
        &self,
        device: usize,
        seed: u64,
        first: u64,
        n: usize,
        flux: &mut [f64],
    ) -> Result<GpuRun> {
        let energies = self.ensemble.energies_gev().len();
        let expected = n
            .checked_mul(energies)
            .ok_or_else(|| Error::InvalidArgument("n_realisations * n_energies overflows".into()))?;
        if flux.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "flux has {} values, expected {n} realisations x {energies} energies = {expected}",
                flux.len()
            )));
        }
        self.run(device, seed, first, n, Output::Host(flux))
    }

    /// [`GpuEnsemble::generate`] into device memory: `flux_device` is the device address (a
    /// CUdeviceptr from cuMemAlloc/cudaMalloc in the device's primary context) of n x energies
    /// f64 values, row-major. Synchronous: the values are there when it returns.
    ///
    /// # Safety
    /// `flux_device` must be such an allocation, of at least n x energies f64, not in use by
    /// other work during the call. The driver cannot check it: a wrong address faults the
    /// device's context for the rest of the process (every later call returns Device).
    pub unsafe fn generate_device(
        &self,
        device: usize,
        seed: u64,
        first: u64,
        n: usize,
        flux_device: u64,
    ) -> Result<GpuRun> {
        n.checked_mul(self.ensemble.energies_gev().len())
            .and_then(|values| values.checked_mul(8))
            .ok_or_else(|| Error::InvalidArgument("n_realisations * n_energies overflows".into()))?;
        if flux_device == 0 && n > 0 {
            return Err(Error::NullPointer("flux_device is NULL".into()));
        }
        self.run(device, seed, first, n, Output::Device(flux_device))
    }

    fn run(&self, device: usize, seed: u64, first: u64, n: usize, output: Output) -> Result<GpuRun> {
        first.checked_add(n as u64).ok_or_else(|| {
            Error::InvalidArgument(format!("realisations {first} + {n} pass the end of the stream numbers"))
        })?;
        #[cfg(feature = "cuda")]
        {
            let gpu = Gpu::get(device)?;
            let tables = self.tables();
            gpu.with(|state| cuda::generate(state, &self.ensemble, tables, seed, first, n, output))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (seed, output);
            super::Gpu::get(device).map(|_| GpuRun::default())
        }
    }
}

/// Where a run's fluxes go (read only by the `cuda` build).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
enum Output<'a> {
    /// Host memory, [n][energies].
    Host(&'a mut [f64]),
    /// A device address of [n][energies] f64.
    Device(u64),
}

#[cfg(feature = "cuda")]
mod cuda {
    use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

    use super::{
        CHUNK_FLUX_VALUES, CHUNK_REALISATIONS, ENERGIES_PER_PASS, GpuRun, MAX_BINS, MAX_BLOCKS, Output,
    };
    use crate::Result;
    use crate::gpu::cuda::device_error;
    use crate::gpu::{DeviceState, Kernels};
    use crate::physics::ensemble::{DeviceTables, Ensemble, Precision, RealisationStart};

    /// `Tables` of kernels/ensemble.cu: the same fields in the same order.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    struct KernelTables {
        bin_width_myr: f64,
        inverse_bin_width: f64,
        light_speed: f64,
        s_max: f64,
        sampler_lo: f64,
        guide_scale: f64,
        bins: u64,
        energies: u64,
        guide_cells: u64,
        pieces: u64,
        single_step: u64,
        max_age: u64,
        cell_of_bin: u64,
        cells: u64,
        guide: u64,
        guide_right: u64,
        piece_right: u64,
        piece_center: u64,
        piece_inv_half_width: u64,
        piece_coefficients: u64,
        single_cells: u64,
    }

    // SAFETY: plain old data in C layout, as the kernel declares it.
    unsafe impl DeviceRepr for KernelTables {}

    /// The tables on the device (kept alive for the kernel's run).
    struct Uploaded {
        max_age: CudaSlice<f64>,
        cell_of_bin: CudaSlice<u32>,
        cells: CudaSlice<f64>,
        guide: CudaSlice<u32>,
        guide_right: CudaSlice<f64>,
        piece_right: CudaSlice<f64>,
        piece_center: CudaSlice<f64>,
        piece_inv_half_width: CudaSlice<f64>,
        piece_coefficients: CudaSlice<f64>,
        single_cells: CudaSlice<u32>,
    }

    /// A device buffer of at least one element (the driver cannot allocate zero bytes).
    fn upload<T: DeviceRepr + Copy + Default>(state: &DeviceState, values: &[T]) -> Result<CudaSlice<T>> {
        let padded;
        let values = if values.is_empty() {
            padded = [T::default()];
            &padded[..]
        } else {
            values
        };
        state.stream.clone_htod(values).map_err(device_error("uploading the ensemble tables"))
    }

    fn upload_tables(state: &DeviceState, tables: &DeviceTables) -> Result<Uploaded> {
        // DeviceCell is 22 words of 8 bytes: 4 scalars (form as its bits), then a and h.
        let cells: Vec<f64> = tables
            .cells
            .iter()
            .flat_map(|c| {
                [c.right, c.inverse_width, c.index, f64::from_bits(c.form)].into_iter().chain(c.a).chain(c.h)
            })
            .collect();
        let sampler = &tables.sampler;
        let coefficients: Vec<f64> = sampler.coefficients.iter().flatten().copied().collect();
        // DeviceSingleCell is 22 words of 4 bytes: da and h, then scale and underflow_bound as
        // two words each (low first, as the little-endian device reads them).
        let single_cells: Vec<u32> = tables
            .single_cells
            .iter()
            .flat_map(|c| {
                let wide = |v: f64| [v.to_bits() as u32, (v.to_bits() >> 32) as u32];
                c.da.iter()
                    .chain(&c.h)
                    .map(|v| v.to_bits())
                    .chain(wide(c.scale))
                    .chain(wide(c.underflow_bound))
            })
            .collect();
        Ok(Uploaded {
            max_age: upload(state, &tables.max_age_myr)?,
            cell_of_bin: upload(state, &tables.cell_of_bin)?,
            cells: upload(state, &cells)?,
            guide: upload(state, &sampler.guide)?,
            guide_right: upload(state, &sampler.guide_right)?,
            piece_right: upload(state, &sampler.right)?,
            piece_center: upload(state, &sampler.center)?,
            piece_inv_half_width: upload(state, &sampler.inv_half_width)?,
            piece_coefficients: upload(state, &coefficients)?,
            single_cells: upload(state, &single_cells)?,
        })
    }

    pub(super) fn generate(
        state: &mut DeviceState,
        ensemble: &Ensemble,
        tables: &DeviceTables,
        seed: u64,
        first: u64,
        n: usize,
        mut output: Output,
    ) -> Result<GpuRun> {
        if n == 0 {
            return Ok(GpuRun::default());
        }
        assert!(
            tables.bins.is_power_of_two() && tables.bins <= MAX_BINS,
            "the kernel's histogram holds a power of two of age bins, up to {MAX_BINS}"
        );
        let name = match ensemble.precision() {
            Precision::Exact => "ensemble_realisations",
            Precision::F32 => "ensemble_realisations_f32",
        };
        let function = state.function(Kernels::Ensemble, name)?;
        let uploaded = upload_tables(state, tables)?;
        let stream = state.stream.clone();
        let kernel_tables = KernelTables {
            bin_width_myr: tables.bin_width_myr,
            inverse_bin_width: tables.inverse_bin_width,
            light_speed: tables.light_speed_kpc_per_myr,
            s_max: tables.sampler.s_max_kpc,
            sampler_lo: tables.sampler.lo,
            guide_scale: tables.sampler.guide_scale,
            bins: tables.bins as u64,
            energies: tables.energies as u64,
            guide_cells: tables.sampler.guide.len() as u64,
            pieces: tables.sampler.right.len() as u64,
            single_step: u64::from(tables.sampler.single_step),
            max_age: device_address(&stream, &uploaded.max_age),
            cell_of_bin: device_address(&stream, &uploaded.cell_of_bin),
            cells: device_address(&stream, &uploaded.cells),
            guide: device_address(&stream, &uploaded.guide),
            guide_right: device_address(&stream, &uploaded.guide_right),
            piece_right: device_address(&stream, &uploaded.piece_right),
            piece_center: device_address(&stream, &uploaded.piece_center),
            piece_inv_half_width: device_address(&stream, &uploaded.piece_inv_half_width),
            piece_coefficients: device_address(&stream, &uploaded.piece_coefficients),
            single_cells: device_address(&stream, &uploaded.single_cells),
        };
        let energies = tables.energies;
        let chunk = n.min(CHUNK_REALISATIONS).min((CHUNK_FLUX_VALUES / energies.max(1)).max(1));
        let mut young =
            stream.alloc_zeros::<u64>(chunk).map_err(device_error("allocating the source counts"))?;
        let mut position =
            stream.alloc_zeros::<u64>(chunk).map_err(device_error("allocating the stream positions"))?;
        let flux_device =
            stream.alloc_zeros::<f64>(chunk * energies).map_err(device_error("allocating the flux"))?;
        let mut needs_host_device =
            stream.alloc_zeros::<u32>(chunk).map_err(device_error("allocating the host flags"))?;
        let mut needs_host = vec![0u32; chunk];
        let mut run = GpuRun::default();
        // Each block draws its realisation's sources into its own slice of the scratch arrays.
        let mut blocks = chunk.min(MAX_BLOCKS);
        let mut scratch_capacity = 0usize;
        let mut scratch = stream.alloc_zeros::<f64>(1).map_err(device_error("allocating scratch"))?;

        let mut starts = realisation_starts(ensemble, seed, first, chunk);
        for chunk_index in 0..n.div_ceil(chunk) {
            let done = chunk_index * chunk;
            let count = (n - done).min(chunk);
            let chunk_first = first + done as u64;
            // The kernel writes the host path's chunk buffer, or the caller's device rows.
            let flux_address = match &output {
                Output::Host(_) => device_address(&stream, &flux_device),
                Output::Device(address) => address + (done * energies * std::mem::size_of::<f64>()) as u64,
            };
            let young_host: Vec<u64> = starts.iter().map(|s| s.young_sources).collect();
            let most = young_host.iter().copied().max().unwrap_or(0) as usize;
            if most > scratch_capacity {
                // A quarter more than needed, so that a slowly rising maximum does not
                // reallocate every chunk.
                scratch_capacity = most + most / 4 + 1;
                // The sources' ages and squared distances in bin order: 2 arrays per block. The
                // old scratch is freed before the free memory is read; where it is short, fewer
                // blocks run (each loops over more realisations), down to one.
                drop(std::mem::replace(
                    &mut scratch,
                    stream.null().map_err(device_error("freeing scratch"))?,
                ));
                let per_block = 2 * scratch_capacity * std::mem::size_of::<f64>();
                let free = state.free_bytes()?;
                // Leave a quarter of the free memory to the driver and other allocations.
                blocks = blocks.min(free / 4 * 3 / per_block);
                if blocks == 0 {
                    return Err(crate::Error::Device(format!(
                        "the ensemble kernel needs {per_block} bytes of scratch for a realisation of {most} \
                         sources, and the device has {free} free"
                    )));
                }
                let values = 2 * scratch_capacity * blocks;
                scratch = stream.alloc_zeros::<f64>(values).map_err(device_error("allocating scratch"))?;
            }
            let position_host: Vec<u64> = starts.iter().map(|s| s.word_position).collect();
            stream
                .memcpy_htod(&young_host, &mut young.slice_mut(..count))
                .map_err(device_error("uploading the source counts"))?;
            stream
                .memcpy_htod(&position_host, &mut position.slice_mut(..count))
                .map_err(device_error("uploading the stream positions"))?;
            for first_energy in (0..energies).step_by(ENERGIES_PER_PASS) {
                let pass_energies = (energies - first_energy).min(ENERGIES_PER_PASS) as u32;
                let config = LaunchConfig {
                    grid_dim: (count.min(blocks) as u32, 1, 1),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                let scratch_capacity_u64 = scratch_capacity as u64;
                let (count_u32, first_energy_u32, stride) =
                    (count as u32, first_energy as u32, energies as u64);
                let mut launch = stream.launch_builder(&function);
                launch
                    .arg(&kernel_tables)
                    .arg(&seed)
                    .arg(&chunk_first)
                    .arg(&young)
                    .arg(&position)
                    .arg(&count_u32)
                    .arg(&first_energy_u32)
                    .arg(&pass_energies)
                    .arg(&flux_address)
                    .arg(&stride)
                    .arg(&mut needs_host_device)
                    .arg(&mut scratch)
                    .arg(&scratch_capacity_u64);
                // SAFETY: the arguments match ensemble_realisations' parameters in type and
                // order; every buffer holds at least `count` rows.
                unsafe { launch.launch(config) }.map_err(device_error("launching the ensemble kernel"))?;
            }
            // The next chunk's source counts on the host while the GPU works.
            let next_first = chunk_first + count as u64;
            let remaining = n - done - count;
            starts = realisation_starts(ensemble, seed, next_first, remaining.min(chunk));
            if let Output::Host(flux) = &mut output {
                stream
                    .memcpy_dtoh(
                        &flux_device.slice(..count * energies),
                        &mut flux[done * energies..(done + count) * energies],
                    )
                    .map_err(device_error("downloading the flux"))?;
            }
            stream
                .memcpy_dtoh(&needs_host_device.slice(..count), &mut needs_host[..count])
                .map_err(device_error("downloading the host flags"))?;
            state.synchronize("running the ensemble kernel")?;
            for r in (0..count).filter(|&r| needs_host[r] != 0) {
                let mut row = vec![0.0; energies];
                ensemble.realisation(seed, chunk_first + r as u64, &mut row);
                match &mut output {
                    Output::Host(flux) => {
                        flux[(done + r) * energies..(done + r + 1) * energies].copy_from_slice(&row)
                    }
                    Output::Device(address) => {
                        let destination =
                            *address + (((done + r) * energies) * std::mem::size_of::<f64>()) as u64;
                        // SAFETY: inside the caller's allocation of n x energies f64 (the
                        // contract of generate_device); a synchronous copy, so `row` outlives it.
                        unsafe { cudarc::driver::result::memcpy_htod_sync(destination, &row) }
                            .map_err(device_error("writing a realisation computed on the host"))?;
                    }
                }
                run.on_host += 1;
            }
        }
        drop(uploaded);
        Ok(run)
    }

    /// The device address of a buffer, for the kernel's table of pointers.
    fn device_address<T>(stream: &cudarc::driver::CudaStream, slice: &CudaSlice<T>) -> u64 {
        use cudarc::driver::DevicePtr;
        let (address, _sync) = slice.device_ptr(stream);
        address
    }

    /// Where realisations first..first + n start, on all host cores.
    fn realisation_starts(ensemble: &Ensemble, seed: u64, first: u64, n: usize) -> Vec<RealisationStart> {
        let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n.max(1));
        let mut starts = vec![RealisationStart { young_sources: 0, word_position: 0 }; n];
        let per_thread = n.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (t, part) in starts.chunks_mut(per_thread).enumerate() {
                scope.spawn(move || {
                    for (i, start) in part.iter_mut().enumerate() {
                        *start = ensemble.realisation_start(seed, first + (t * per_thread + i) as u64);
                    }
                });
            }
        });
        starts
    }
}
