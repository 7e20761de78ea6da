"""crkernels: Python (ctypes + NumPy) bindings of the crkernels C ABI.

Units follow include/crkernels.h: energy GeV, time Myr, distance kpc, diffusion cm^2/s,
energy density eV/cm^3, temperature K, magnetic field microgauss, loss rates GeV/s, flux
GeV^-1 m^-2 s^-1 sr^-1. Every failing call raises a subclass of ``crkernels.Error`` carrying
crk_last_error_message(). The library is found through CRKERNELS_LIB, then the copy bundled in
the package by pip, then ../../target/release relative to bindings/python, then the system
loader (crkernels.library_path() says which). crkernels.pipeline runs the SECRET pipeline
(grid, train, evaluate, sample, fit) through the bundled `crk` tool.
"""

from ._native import (
    LIBRARY_PATH,
    Cancelled,
    Device,
    Error,
    Format,
    InvalidArgument,
    Io,
    NoDevice,
    NullPointer,
    OutOfDomain,
    Panic,
    last_error_message,
    library_path,
    vector_isa,
    version,
)
from .classifier import two_sample_options_default, two_sample_test
from .conv import (
    avgpool1d,
    avgpool2d,
    conv1d,
    conv1d_gpu,
    conv1d_gpu_device,
    conv1d_output_length,
    conv2d,
    conv2d_gpu,
    conv2d_gpu_device,
    conv2d_output_shape,
    global_avgpool,
    maxpool1d,
    maxpool2d,
    pool2d_output_shape,
)
from .ensemble import (
    CRK_PRECISION_EXACT,
    CRK_PRECISION_F32,
    PRECISIONS,
    Ensemble,
    SourceSpectrum,
    device_count,
    device_info,
    flux_from_sources,
    generate,
    generate_gpu,
)
from .losses import Losses, isrf_preset_components
from .made import Made
from .train import MadeTrainer, train_made, train_options_default
from .transport import Transport
from .surrogate import Surrogate, polynomial_feature_count
from . import pipeline  # noqa: E402 (after the library is loaded)

__version__ = version()

__all__ = [
    "LIBRARY_PATH", "Cancelled", "Device", "Error", "Format", "InvalidArgument", "Io", "NoDevice",
    "NullPointer", "OutOfDomain", "Panic", "last_error_message", "library_path", "vector_isa", "version",
    "two_sample_options_default", "two_sample_test",
    "avgpool1d", "avgpool2d", "conv1d", "conv1d_gpu", "conv1d_gpu_device", "conv1d_output_length", "conv2d", "conv2d_gpu",
    "conv2d_gpu_device",
    "conv2d_output_shape", "global_avgpool", "maxpool1d", "maxpool2d", "pool2d_output_shape",
    "CRK_PRECISION_EXACT", "CRK_PRECISION_F32", "PRECISIONS", "Ensemble", "SourceSpectrum", "device_count", "device_info", "flux_from_sources", "generate",
    "generate_gpu", "Losses", "isrf_preset_components", "Made", "Transport",
    "MadeTrainer", "train_made", "train_options_default", "pipeline",
    "Surrogate", "polynomial_feature_count",
]
