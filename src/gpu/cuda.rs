//! The CUDA side of the GPU path, through cudarc with the driver loaded at run time.

use std::sync::Arc;

use cudarc::driver::result::DriverError;
use cudarc::driver::sys::{CUdevice_attribute, CUresult};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, result, sys};
use cudarc::nvrtc::Ptx;

use super::DeviceInfo;
use crate::{Error, Result};

/// The kernel families, one PTX module each (kernels/<name>.cu, built by scripts/build-ptx.sh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernels {
    /// kernels/ensemble.cu: the stochastic ensemble.
    Ensemble,
    /// kernels/made.cu: the MADE-MoG emulator.
    Made,
    /// kernels/conv.cu: convolutions and pooling.
    Conv,
}

impl Kernels {
    const COUNT: usize = 3;

    fn ptx(self) -> &'static str {
        match self {
            Kernels::Ensemble => include_str!("../../kernels/ptx/ensemble.ptx"),
            Kernels::Made => include_str!("../../kernels/ptx/made.ptx"),
            Kernels::Conv => include_str!("../../kernels/ptx/conv.ptx"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whether the CUDA driver library can be loaded (cudarc panics on first use otherwise).
fn driver_present() -> bool {
    // SAFETY: only tries to open the shared library.
    unsafe { sys::is_culib_present() }
}

/// A driver error as our Device error, naming what failed.
pub(crate) fn device_error(what: &str) -> impl FnOnce(DriverError) -> Error + '_ {
    move |error| {
        if error.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            Error::Device(format!("{what}: out of device memory ({error})"))
        } else {
            Error::Device(format!("{what}: CUDA driver error {error}"))
        }
    }
}

pub(super) fn device_count() -> Result<usize> {
    if !driver_present() {
        return Ok(0);
    }
    match result::init() {
        Ok(()) => {}
        Err(error) if error.0 == CUresult::CUDA_ERROR_NO_DEVICE => return Ok(0),
        Err(error) => return Err(device_error("initialising the CUDA driver")(error)),
    }
    let count = result::device::get_count().map_err(device_error("counting CUDA devices"))?;
    Ok(count.max(0) as usize)
}

pub(super) fn no_device_reason() -> String {
    if driver_present() {
        "the CUDA driver finds no device on this machine".into()
    } else {
        "no CUDA driver on this machine (libcuda could not be loaded)".into()
    }
}

/// One device's context, stream and the kernel modules loaded so far.
pub(crate) struct DeviceState {
    pub(crate) context: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    modules: [Option<Arc<CudaModule>>; Kernels::COUNT],
}

impl DeviceState {
    pub(super) fn open(ordinal: usize) -> Result<Self> {
        let context = CudaContext::new(ordinal).map_err(device_error("opening the CUDA device"))?;
        let stream = context.default_stream();
        Ok(DeviceState { context, stream, modules: Default::default() })
    }

    /// Makes the device's context current on the calling host thread.
    pub(super) fn bind(&self) -> Result<()> {
        self.context.bind_to_thread().map_err(device_error("binding the CUDA context"))
    }

    pub(super) fn info(&self) -> Result<DeviceInfo> {
        let context = &self.context;
        let name = context.name().map_err(device_error("reading the device name"))?;
        let (free_bytes, total_bytes) =
            context.mem_get_info().map_err(device_error("reading device memory"))?;
        let compute_capability =
            context.compute_capability().map_err(device_error("reading the compute capability"))?;
        let multiprocessors = context
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(device_error("reading the multiprocessor count"))?;
        Ok(DeviceInfo { name, total_bytes, free_bytes, compute_capability, multiprocessors })
    }

    /// Free device memory [bytes].
    pub(crate) fn free_bytes(&self) -> Result<usize> {
        Ok(self.context.mem_get_info().map_err(device_error("reading device memory"))?.0)
    }

    /// Kernel `name` of `family`, loading the family's PTX on first use.
    pub(crate) fn function(&mut self, family: Kernels, name: &str) -> Result<CudaFunction> {
        let slot = &mut self.modules[family.index()];
        let module = match slot {
            Some(module) => module.clone(),
            None => {
                let module = self
                    .context
                    .load_module(Ptx::from_src(family.ptx()))
                    .map_err(device_error("loading the embedded PTX"))?;
                *slot = Some(module.clone());
                module
            }
        };
        module.load_function(name).map_err(|e| device_error(&format!("finding kernel {name}"))(e))
    }

    /// Waits for the stream and turns an asynchronous kernel error into Device.
    pub(crate) fn synchronize(&self, what: &str) -> Result<()> {
        self.stream.synchronize().map_err(device_error(what))
    }
}
