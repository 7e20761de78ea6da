"""Loading libcrkernels, the C structs, argtypes/restype declarations and status checking.

The library is looked up in this order:

1. the path in the environment variable ``CRKERNELS_LIB`` (a user's own build wins);
2. the copy bundled inside this package, ``crkernels/libcrkernels.so``, which ``pip install
   ./bindings/python`` and the wheels built by ``pip wheel`` put there (bindings/python/setup.py);
3. ``../../target/release/libcrkernels.so`` relative to this package (a source checkout
   after ``cargo build --release``);
4. the system loader (``ctypes.util.find_library("crkernels")`` / ``libcrkernels.so``).

``library_path()`` (and ``LIBRARY_PATH``) says which file was loaded.
"""

import ctypes
import ctypes.util
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint64,
    c_void_p,
)

import numpy as np

# Status codes (include/crkernels.h).
CRK_OK = 0
CRK_ERR_NULL_POINTER = 1
CRK_ERR_INVALID_ARGUMENT = 2
CRK_ERR_OUT_OF_DOMAIN = 3
CRK_ERR_IO = 4
CRK_ERR_FORMAT = 5
CRK_ERR_NO_DEVICE = 6
CRK_ERR_DEVICE = 7
CRK_ERR_PANIC = 8
CRK_ERR_CANCELLED = 9


class Error(Exception):
    """A crkernels call failed. ``status`` is the C status code, the message is
    crk_last_error_message() of the failed call."""

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class NullPointer(Error):
    """CRK_ERR_NULL_POINTER: a required pointer was NULL (or a handle was closed)."""

    status = CRK_ERR_NULL_POINTER


class InvalidArgument(Error, ValueError):
    """CRK_ERR_INVALID_ARGUMENT: NaN or infinite value, wrong sign or size, unknown enum."""

    status = CRK_ERR_INVALID_ARGUMENT


class OutOfDomain(Error, ValueError):
    """CRK_ERR_OUT_OF_DOMAIN: a value outside a table or the domain of the quantity."""

    status = CRK_ERR_OUT_OF_DOMAIN


class Io(Error, OSError):
    """CRK_ERR_IO: a file could not be read or written."""

    status = CRK_ERR_IO


class Format(Error):
    """CRK_ERR_FORMAT: a file or buffer is corrupt or has the wrong layout."""

    status = CRK_ERR_FORMAT


class NoDevice(Error):
    """CRK_ERR_NO_DEVICE: no GPU, no CUDA driver, or a library built without `cuda`."""

    status = CRK_ERR_NO_DEVICE


class Device(Error):
    """CRK_ERR_DEVICE: the GPU reported an error."""

    status = CRK_ERR_DEVICE


class Panic(Error):
    """CRK_ERR_PANIC: a bug inside the library (please report it)."""

    status = CRK_ERR_PANIC


class Cancelled(Error):
    """CRK_ERR_CANCELLED: a long run was cancelled through its progress callback.
    ``partial`` holds the output (finished rows valid, unfinished rows NaN) where known."""

    status = CRK_ERR_CANCELLED
    partial = None


_ERRORS = {
    cls.status: cls
    for cls in (
        NullPointer,
        InvalidArgument,
        OutOfDomain,
        Io,
        Format,
        NoDevice,
        Device,
        Panic,
        Cancelled,
    )
}


def _candidates():
    env = os.environ.get("CRKERNELS_LIB")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    name = {"darwin": "libcrkernels.dylib", "win32": "crkernels.dll"}.get(
        sys.platform, "libcrkernels.so"
    )
    bundled = os.path.join(here, name)
    if os.path.exists(bundled):
        yield bundled
    # ../../target/release relative to the Python package root bindings/python/ is the
    # repository's target/release (three levels up from this directory).
    local = os.path.normpath(os.path.join(here, "..", "..", "..", "target", "release", name))
    if os.path.exists(local):
        yield local
    found = ctypes.util.find_library("crkernels")
    if found:
        yield found
    yield name


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError(
        "crkernels: cannot load the shared library (install the package with pip, which "
        "bundles it, set CRKERNELS_LIB, or run `cargo build --release` in the checkout): " + "; ".join(errors)
    )


_lib, LIBRARY_PATH = _load()


def library_path():
    """The path of the loaded libcrkernels: $CRKERNELS_LIB, the copy bundled in the package,
    target/release of a source checkout, or the name the system loader resolved."""
    return LIBRARY_PATH


# ---------------------------------------------------------------------------------------
# C structs
# ---------------------------------------------------------------------------------------


class crk_source_spectrum(Structure):
    _fields_ = [("q_star_per_GeV", c_double), ("gamma", c_double), ("cutoff_GeV", c_double)]


class crk_ensemble_params(Structure):
    _fields_ = [
        ("sn_rate_per_Myr", c_double),
        ("t_max_Myr", c_double),
        ("s_max_kpc", c_double),
        ("spatial", c_int32),
        ("poisson_count", c_int32),
        ("spectrum", crk_source_spectrum),
    ]


class crk_photon_field(Structure):
    _fields_ = [("temperature_K", c_double), ("energy_density_eV_per_cm3", c_double)]


class crk_made_load_options(Structure):
    _fields_ = [("activation", c_int32), ("epsilon", c_double), ("sbi_dummy_input", c_int32)]


class crk_conv_params(Structure):
    _fields_ = [
        ("stride", c_size_t * 2),
        ("padding", c_size_t * 2),
        ("dilation", c_size_t * 2),
        ("groups", c_size_t),
    ]


class crk_pool_params(Structure):
    _fields_ = [
        ("kernel", c_size_t * 2),
        ("stride", c_size_t * 2),
        ("padding", c_size_t * 2),
        ("count_include_pad", c_int32),
    ]


class crk_surrogate_options(Structure):
    _fields_ = [
        ("weighting", c_int32),
        ("custom_weights", POINTER(c_double)),
        ("start_index", c_int64),
        ("degrees", POINTER(c_size_t)),
        ("n_degrees", c_size_t),
        ("alphas", POINTER(c_double)),
        ("n_alphas", c_size_t),
    ]


class crk_surrogate_info(Structure):
    _fields_ = [
        ("n_params", c_size_t),
        ("degree", c_size_t),
        ("n_features", c_size_t),
        ("start_index", c_size_t),
        ("alpha", c_double),
    ]


class crk_surrogate_step(Structure):
    _fields_ = [
        ("distance", c_double),
        ("gradient_norm", c_double),
        ("predicted_nll", c_double),
        ("zero_gradient", c_int32),
        ("at_max_distance", c_int32),
    ]


crk_progress_fn = CFUNCTYPE(c_int32, c_size_t, c_size_t, c_void_p)

# ---------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------

_D = POINTER(c_double)
_F = POINTER(c_float)
_Z = POINTER(c_size_t)
_H = c_void_p  # opaque handles
_S = c_int32  # crk_status

_lib.crk_last_error_message.argtypes = []
_lib.crk_last_error_message.restype = c_char_p
_lib.crk_version.argtypes = []
_lib.crk_version.restype = c_char_p
_lib.crk_vector_isa.argtypes = []
_lib.crk_vector_isa.restype = c_char_p

# losses
_lib.crk_losses_new.argtypes = [c_int32, POINTER(crk_photon_field), c_size_t, c_double, POINTER(_H)]
_lib.crk_losses_new.restype = _S
_lib.crk_losses_new_preset.argtypes = [c_int32, c_int32, c_double, POINTER(_H)]
_lib.crk_losses_new_preset.restype = _S
_lib.crk_losses_new_thomson.argtypes = [c_double, POINTER(_H)]
_lib.crk_losses_new_thomson.restype = _S
_lib.crk_isrf_preset_components.argtypes = [c_int32, POINTER(crk_photon_field), c_size_t, _Z]
_lib.crk_isrf_preset_components.restype = _S
_lib.crk_losses_rate.argtypes = [_H, _D, c_size_t, _D]
_lib.crk_losses_rate.restype = _S
_lib.crk_losses_free.argtypes = [_H]
_lib.crk_losses_free.restype = None

# transport
_lib.crk_transport_new.argtypes = [_H, c_double, c_double, c_double, c_double, c_double, POINTER(_H)]
_lib.crk_transport_new.restype = _S
_lib.crk_transport_initial_energy.argtypes = [_H, _D, _D, c_size_t, _D]
_lib.crk_transport_initial_energy.restype = _S
_lib.crk_transport_loss_length2.argtypes = [_H, _D, _D, c_size_t, _D]
_lib.crk_transport_loss_length2.restype = _S
_lib.crk_transport_loss_time.argtypes = [_H, _D, _D, c_size_t, _D]
_lib.crk_transport_loss_time.restype = _S
_lib.crk_transport_max_age.argtypes = [_H, _D, c_size_t, _D]
_lib.crk_transport_max_age.restype = _S
_lib.crk_transport_free.argtypes = [_H]
_lib.crk_transport_free.restype = None

# Ridge surrogate (crk_surrogate_*).
_lib.crk_polynomial_feature_count.argtypes = [c_size_t, c_size_t, _Z]
_lib.crk_polynomial_feature_count.restype = _S
_lib.crk_surrogate_fit.argtypes = [_D, c_size_t, c_size_t, _D, POINTER(crk_surrogate_options), POINTER(_H)]
_lib.crk_surrogate_fit.restype = _S
_lib.crk_surrogate_fit_threads.argtypes = [
    _D, c_size_t, c_size_t, _D, POINTER(crk_surrogate_options), c_size_t, POINTER(_H),
]
_lib.crk_surrogate_fit_threads.restype = _S
_lib.crk_surrogate_get_info.argtypes = [_H, POINTER(crk_surrogate_info)]
_lib.crk_surrogate_get_info.restype = _S
_lib.crk_surrogate_coefficients.argtypes = [_H, _D, c_size_t, _Z]
_lib.crk_surrogate_coefficients.restype = _S
_lib.crk_surrogate_validation_scores.argtypes = [_H, _D, c_size_t, _Z]
_lib.crk_surrogate_validation_scores.restype = _S
_lib.crk_surrogate_predict.argtypes = [_H, _D, c_size_t, _D]
_lib.crk_surrogate_predict.restype = _S
_lib.crk_surrogate_gradient.argtypes = [_H, _D, _D]
_lib.crk_surrogate_gradient.restype = _S
_lib.crk_surrogate_propose_step.argtypes = [_H, c_double, _D, POINTER(crk_surrogate_step)]
_lib.crk_surrogate_propose_step.restype = _S
_lib.crk_surrogate_free.argtypes = [_H]
_lib.crk_surrogate_free.restype = None

# ensemble
_lib.crk_flux_from_sources.argtypes = [_H, POINTER(crk_source_spectrum), _D, _D, c_size_t, _D, c_size_t, _D]
_lib.crk_flux_from_sources.restype = _S
_lib.crk_source_spectrum_from_energy.argtypes = [c_double, c_double, c_double, c_double, POINTER(crk_source_spectrum)]
_lib.crk_source_spectrum_from_energy.restype = _S
_lib.crk_ensemble_new.argtypes = [_H, POINTER(crk_ensemble_params), _D, c_size_t, POINTER(_H)]
_lib.crk_ensemble_new.restype = _S
_lib.crk_ensemble_new_with_precision.argtypes = [_H, POINTER(crk_ensemble_params), _D, c_size_t, c_int32, POINTER(_H)]
_lib.crk_ensemble_new_with_precision.restype = _S
_lib.crk_ensemble_run.argtypes = [_H, c_uint64, c_uint64, c_size_t, c_size_t, _D, crk_progress_fn, c_void_p]
_lib.crk_ensemble_run.restype = _S
_lib.crk_ensemble_generate.argtypes = [_H, POINTER(crk_ensemble_params), _D, c_size_t, c_uint64, c_uint64, c_size_t, c_size_t, _D]
_lib.crk_ensemble_generate.restype = _S
_lib.crk_ensemble_sources.argtypes = [_H, c_uint64, c_uint64, _D, _D, c_size_t, _Z]
_lib.crk_ensemble_sources.restype = _S
_lib.crk_ensemble_free.argtypes = [_H]
_lib.crk_ensemble_free.restype = None
_lib.crk_ensemble_run_gpu.argtypes = [_H, c_int32, c_uint64, c_uint64, c_size_t, _D]
_lib.crk_ensemble_run_gpu.restype = _S
_lib.crk_ensemble_generate_gpu.argtypes = [_H, POINTER(crk_ensemble_params), _D, c_size_t, c_uint64, c_uint64, c_size_t, c_int32, _D]
_lib.crk_ensemble_generate_gpu.restype = _S
# Device pointers (integers: CuPy's a.data.ptr, PyTorch's t.data_ptr()) travel as c_void_p.
_lib.crk_ensemble_run_gpu_device.argtypes = [_H, c_int32, c_uint64, c_uint64, c_size_t, c_void_p]
_lib.crk_ensemble_run_gpu_device.restype = _S
_lib.crk_device_count.argtypes = [POINTER(c_int32)]
_lib.crk_device_count.restype = _S
_lib.crk_device_info.argtypes = [c_int32, POINTER(c_char), c_size_t, POINTER(c_uint64), POINTER(c_uint64), POINTER(c_int32), POINTER(c_int32)]
_lib.crk_device_info.restype = _S

# MADE
_lib.crk_made_load.argtypes = [c_char_p, POINTER(_H)]
_lib.crk_made_load.restype = _S
_lib.crk_made_load_with_options.argtypes = [c_char_p, POINTER(crk_made_load_options), POINTER(_H)]
_lib.crk_made_load_with_options.restype = _S
_lib.crk_made_load_buffer.argtypes = [POINTER(c_uint8), c_size_t, POINTER(_H)]
_lib.crk_made_load_buffer.restype = _S
_lib.crk_made_load_buffer_with_options.argtypes = [POINTER(c_uint8), c_size_t, POINTER(crk_made_load_options), POINTER(_H)]
_lib.crk_made_load_buffer_with_options.restype = _S
_lib.crk_made_save.argtypes = [_H, c_char_p]
_lib.crk_made_save.restype = _S
_lib.crk_made_dims.argtypes = [_H, _Z, _Z, _Z]
_lib.crk_made_dims.restype = _S
_lib.crk_made_workspace_bytes.argtypes = [_H, _Z]
_lib.crk_made_workspace_bytes.restype = _S
_lib.crk_made_order.argtypes = [_H, _Z]
_lib.crk_made_order.restype = _S
_lib.crk_made_log_prob.argtypes = [_H, _F, _F, c_size_t, c_size_t, _F]
_lib.crk_made_log_prob.restype = _S
_lib.crk_made_log_prob_grad.argtypes = [_H, _F, _F, c_size_t, c_size_t, _F, _F, _F]
_lib.crk_made_log_prob_grad.restype = _S
_lib.crk_made_sample.argtypes = [_H, _F, c_size_t, c_uint64, c_size_t, _F]
_lib.crk_made_sample.restype = _S
_lib.crk_made_sample_from.argtypes = [_H, _F, c_size_t, c_uint64, c_uint64, c_size_t, _F]
_lib.crk_made_sample_from.restype = _S
_lib.crk_made_sample_given.argtypes = [_H, _F, _Z, c_size_t, c_size_t, c_uint64, c_size_t, _F]
_lib.crk_made_sample_given.restype = _S
_lib.crk_made_sample_given_from.argtypes = [_H, _F, _Z, c_size_t, c_size_t, c_uint64, c_uint64, c_size_t, _F]
_lib.crk_made_sample_given_from.restype = _S
_lib.crk_made_log_prob_gpu.argtypes = [_H, c_int32, _F, _F, c_size_t, _F]
_lib.crk_made_log_prob_gpu.restype = _S
_lib.crk_made_sample_gpu.argtypes = [_H, c_int32, _F, c_size_t, c_uint64, _F]
_lib.crk_made_sample_gpu.restype = _S
_lib.crk_made_sample_gpu_from.argtypes = [_H, c_int32, _F, c_size_t, c_uint64, c_uint64, _F]
_lib.crk_made_sample_gpu_from.restype = _S
_lib.crk_made_sample_given_gpu.argtypes = [_H, c_int32, _F, _Z, c_size_t, c_size_t, c_uint64, _F]
_lib.crk_made_sample_given_gpu.restype = _S
_lib.crk_made_sample_given_gpu_from.argtypes = [_H, c_int32, _F, _Z, c_size_t, c_size_t, c_uint64, c_uint64, _F]
_lib.crk_made_sample_given_gpu_from.restype = _S
_lib.crk_made_log_prob_gpu_device.argtypes = [_H, c_int32, c_void_p, c_void_p, c_size_t, c_void_p]
_lib.crk_made_log_prob_gpu_device.restype = _S
_lib.crk_made_sample_gpu_device.argtypes = [_H, c_int32, c_void_p, c_size_t, c_uint64, c_void_p]
_lib.crk_made_sample_gpu_device.restype = _S
_lib.crk_made_sample_gpu_device_from.argtypes = [_H, c_int32, c_void_p, c_size_t, c_uint64, c_uint64, c_void_p]
_lib.crk_made_sample_gpu_device_from.restype = _S
_lib.crk_made_free.argtypes = [_H]
_lib.crk_made_free.restype = None

# convolution and pooling
_P = POINTER(crk_conv_params)
_Q = POINTER(crk_pool_params)
_lib.crk_conv2d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, c_size_t, _F, _F, c_size_t, c_size_t, c_size_t, _P, _F]
_lib.crk_conv2d_f32.restype = _S
_lib.crk_conv1d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, _F, _F, c_size_t, c_size_t, _P, _F]
_lib.crk_conv1d_f32.restype = _S
_lib.crk_conv2d_f32_threads.argtypes = _lib.crk_conv2d_f32.argtypes[:-1] + [c_size_t, _F]
_lib.crk_conv2d_f32_threads.restype = _S
_lib.crk_conv1d_f32_threads.argtypes = _lib.crk_conv1d_f32.argtypes[:-1] + [c_size_t, _F]
_lib.crk_conv1d_f32_threads.restype = _S
_lib.crk_conv2d_output_shape.argtypes = [c_size_t, c_size_t, c_size_t, c_size_t, _P, _Z, _Z]
_lib.crk_conv2d_output_shape.restype = _S
_lib.crk_conv1d_output_length.argtypes = [c_size_t, c_size_t, _P, _Z]
_lib.crk_conv1d_output_length.restype = _S
_lib.crk_pool2d_output_shape.argtypes = [c_size_t, c_size_t, _Q, _Z, _Z]
_lib.crk_pool2d_output_shape.restype = _S
_lib.crk_maxpool2d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, c_size_t, _Q, _F]
_lib.crk_maxpool2d_f32.restype = _S
_lib.crk_avgpool2d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, c_size_t, _Q, _F]
_lib.crk_avgpool2d_f32.restype = _S
_lib.crk_maxpool1d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, _Q, _F]
_lib.crk_maxpool1d_f32.restype = _S
_lib.crk_avgpool1d_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, _Q, _F]
_lib.crk_avgpool1d_f32.restype = _S
_lib.crk_global_avgpool_f32.argtypes = [_F, c_size_t, c_size_t, c_size_t, _F]
_lib.crk_global_avgpool_f32.restype = _S
_lib.crk_conv2d_f32_gpu.argtypes = [c_int32] + _lib.crk_conv2d_f32.argtypes
_lib.crk_conv2d_f32_gpu.restype = _S
_lib.crk_conv2d_f32_gpu_device.argtypes = (
    [c_int32, c_void_p] + _lib.crk_conv2d_f32.argtypes[1:-1] + [c_void_p])
_lib.crk_conv2d_f32_gpu_device.restype = _S
_lib.crk_conv1d_f32_gpu_device.argtypes = (
    [c_int32, c_void_p] + _lib.crk_conv1d_f32.argtypes[1:-1] + [c_void_p])
_lib.crk_conv1d_f32_gpu_device.restype = _S
_lib.crk_conv1d_f32_gpu.argtypes = [c_int32] + _lib.crk_conv1d_f32.argtypes
_lib.crk_conv1d_f32_gpu.restype = _S
_lib.crk_maxpool2d_f32_gpu.argtypes = [c_int32] + _lib.crk_maxpool2d_f32.argtypes
_lib.crk_maxpool2d_f32_gpu.restype = _S
_lib.crk_avgpool2d_f32_gpu.argtypes = [c_int32] + _lib.crk_avgpool2d_f32.argtypes
_lib.crk_avgpool2d_f32_gpu.restype = _S
_lib.crk_maxpool1d_f32_gpu.argtypes = [c_int32] + _lib.crk_maxpool1d_f32.argtypes
_lib.crk_maxpool1d_f32_gpu.restype = _S
_lib.crk_avgpool1d_f32_gpu.argtypes = [c_int32] + _lib.crk_avgpool1d_f32.argtypes
_lib.crk_avgpool1d_f32_gpu.restype = _S
_lib.crk_global_avgpool_f32_gpu.argtypes = [c_int32] + _lib.crk_global_avgpool_f32.argtypes
_lib.crk_global_avgpool_f32_gpu.restype = _S


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def last_error_message():
    """crk_last_error_message() of this thread ('' after a successful call)."""
    return _lib.crk_last_error_message().decode("utf-8", "replace")


def version():
    """The library version, "MAJOR.MINOR.PATCH" (crk_version)."""
    return _lib.crk_version().decode("ascii")


def vector_isa():
    """The vector instruction set the kernels use: "baseline", "avx2", "avx512" or "neon"
    (crk_vector_isa; the environment variable CRKERNELS_ISA, read at the first call into the
    library, overrides the widest set the CPU has)."""
    return _lib.crk_vector_isa().decode("ascii")


def check(status, name=""):
    """Raises the Error subclass of `status` (with crk_last_error_message()) unless CRK_OK."""
    if status == CRK_OK:
        return
    message = last_error_message()
    if name:
        message = f"{name}: {message}"
    cls = _ERRORS.get(status)
    if cls is None:
        raise Error(f"{message} (status {status})", status)
    raise cls(message)


def f64(a):
    """`a` as a C-contiguous float64 array (a copy only where needed)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def f32(a):
    """`a` as a C-contiguous float32 array (a copy only where needed)."""
    return np.ascontiguousarray(a, dtype=np.float32)


def dptr(a):
    return a.ctypes.data_as(_D)


def fptr(a):
    return a.ctypes.data_as(_F)


def zptr(a):
    return a.ctypes.data_as(_Z)


class Handle:
    """Base of the handle classes: owns one opaque pointer, released by close(), by leaving
    a ``with`` block, or when garbage-collected."""

    _free = None  # set by subclasses: the crk_*_free function

    def __init__(self, ptr):
        self._ptr = ptr

    @property
    def _as_parameter_(self):
        # A closed handle is passed as NULL: the library answers CRK_ERR_NULL_POINTER.
        return self._ptr

    @property
    def closed(self):
        return not self._ptr

    def close(self):
        """Releases the handle (idempotent)."""
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            type(self)._free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
