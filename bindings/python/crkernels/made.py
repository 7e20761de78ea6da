"""MADE mixture-of-Gaussians emulators (crk_made_*): float32 data, [n, n_context] context,
[n, n_dims] x, natural-log densities in the user's (unstandardised) units of x."""

import ctypes
import os

import numpy as np

from . import _native
from ._native import _lib, check, crk_made_load_options, f32, fptr, zptr

ACTIVATIONS = {"from_file": -1, "sigmoid": 0, "tanh": 1, "relu": 2, "leaky_relu": 3, "elu": 4}


def _options(activation, epsilon, sbi_dummy_input):
    if activation is None and epsilon is None and sbi_dummy_input is None:
        return None
    if isinstance(activation, str):
        try:
            activation = ACTIVATIONS[activation.lower()]
        except KeyError:
            raise _native.InvalidArgument(f"unknown activation {activation!r}") from None
    return crk_made_load_options(
        -1 if activation is None else int(activation),
        0.0 if epsilon is None else float(epsilon),
        -1 if sbi_dummy_input is None else int(bool(sbi_dummy_input)),
    )


def _first_row(first_row):
    """first_row as an int in [0, 2^64) (ctypes would wrap a negative one silently)."""
    first = int(first_row)
    if not 0 <= first < 1 << 64:
        raise _native.InvalidArgument(f"first_row must be in [0, 2^64), got {first}")
    return first


class Made(_native.Handle):
    """A MADE-MoG model loaded from a safetensors file (plain `crkernels.made.v1` layout or an
    nflows/sbi state_dict) (crk_made_load / crk_made_load_with_options). For nflows files,
    `activation` ("relu", "tanh", ...), `epsilon` (sigma floor) and `sbi_dummy_input` give
    what the state_dict does not record (None: from the file's metadata / nflows defaults).
    Use Made.from_bytes for a file in memory. Release with close() or a ``with`` block.
    """

    _free = _lib.crk_made_free

    def __init__(self, path, activation=None, epsilon=None, sbi_dummy_input=None):
        out = ctypes.c_void_p()
        opts = _options(activation, epsilon, sbi_dummy_input)
        p = os.fsencode(path)
        if opts is None:
            check(_lib.crk_made_load(p, ctypes.byref(out)), "crk_made_load")
        else:
            check(_lib.crk_made_load_with_options(p, ctypes.byref(opts), ctypes.byref(out)),
                  "crk_made_load_with_options")
        super().__init__(out.value)
        self._dims()

    @classmethod
    def from_bytes(cls, data, activation=None, epsilon=None, sbi_dummy_input=None):
        """A model from the bytes of a safetensors file (crk_made_load_buffer[_with_options])."""
        buf = np.frombuffer(bytes(data), dtype=np.uint8)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        out = ctypes.c_void_p()
        opts = _options(activation, epsilon, sbi_dummy_input)
        if opts is None:
            check(_lib.crk_made_load_buffer(ptr, buf.size, ctypes.byref(out)), "crk_made_load_buffer")
        else:
            check(_lib.crk_made_load_buffer_with_options(ptr, buf.size, ctypes.byref(opts), ctypes.byref(out)),
                  "crk_made_load_buffer_with_options")
        self = cls.__new__(cls)
        _native.Handle.__init__(self, out.value)
        self._dims()
        return self

    def save(self, path):
        """Saves the model as a safetensors file in the plain `crkernels.made.v1` layout
        (crk_made_save), written to a temporary file and renamed over `path`: Made(path) gives
        the same model bit for bit. An nflows model raises InvalidArgument (the plain layout
        cannot hold it), an unwritable path IoError."""
        check(_lib.crk_made_save(self, os.fsencode(path)), "crk_made_save")

    def _dims(self):
        c, d, k = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
        check(_lib.crk_made_dims(self, ctypes.byref(c), ctypes.byref(d), ctypes.byref(k)), "crk_made_dims")
        self.n_context, self.n_dims, self.n_components = c.value, d.value, k.value

    @property
    def dims(self):
        """(n_context, n_dims, n_components) (crk_made_dims)."""
        return self.n_context, self.n_dims, self.n_components

    @property
    def workspace_bytes(self):
        """Working memory of one thread in log_prob and sample, in bytes, whatever the batch
        (crk_made_workspace_bytes)."""
        size = ctypes.c_size_t()
        check(_lib.crk_made_workspace_bytes(self, ctypes.byref(size)), "crk_made_workspace_bytes")
        return size.value

    def order(self):
        """The autoregressive order: order[t] is the data dimension drawn t-th (crk_made_order)."""
        out = np.empty(self.n_dims, dtype=np.uintp)
        check(_lib.crk_made_order(self, zptr(out)), "crk_made_order")
        return out.astype(np.int64)

    def _context(self, context, n):
        if self.n_context == 0:
            return None, None
        if context is None:
            raise _native.InvalidArgument(f"this model needs a context [n, {self.n_context}]")
        c = f32(context)
        if c.size != n * self.n_context:
            raise _native.InvalidArgument(f"context has shape {c.shape}, expected [{n}, {self.n_context}]")
        c = c.reshape(n, self.n_context)
        return c, fptr(c)

    def _x(self, x):
        x = f32(x)
        if x.ndim == 1 and self.n_dims != 1:
            x = x.reshape(1, -1)
        return x.reshape(-1, self.n_dims)

    def log_prob(self, x, context=None, n_threads=0):
        """log p(x | context) [float32, shape n] for x [n, n_dims] and context [n, n_context]
        (crk_made_log_prob); n_threads 0: all cores (results do not depend on it)."""
        x = self._x(x)
        n = x.shape[0]
        c, cp = self._context(context, n)
        out = np.empty(n, dtype=np.float32)
        check(_lib.crk_made_log_prob(self, cp, fptr(x), n, int(n_threads), fptr(out)), "crk_made_log_prob")
        return out

    def log_prob_grad(self, x, context=None, n_threads=0):
        """(log_prob [n], grad_context [n, n_context], grad_x [n, n_dims]), float32: log p(x |
        context) and its gradients with respect to the context and to x in the user's units
        (crk_made_log_prob_grad); n_threads 0: all cores (results do not depend on it)."""
        x = self._x(x)
        n = x.shape[0]
        c, cp = self._context(context, n)
        lp = np.empty(n, dtype=np.float32)
        gc = np.empty((n, self.n_context), dtype=np.float32)
        gx = np.empty((n, self.n_dims), dtype=np.float32)
        check(_lib.crk_made_log_prob_grad(self, cp, fptr(x), n, int(n_threads), fptr(lp),
                                          fptr(gc) if self.n_context else None, fptr(gx)),
              "crk_made_log_prob_grad")
        return lp, gc, gx

    def log_prob_gpu(self, x, context=None, device=0):
        """log_prob on GPU `device` (crk_made_log_prob_gpu); raises NoDevice without one."""
        x = self._x(x)
        n = x.shape[0]
        c, cp = self._context(context, n)
        out = np.empty(n, dtype=np.float32)
        check(_lib.crk_made_log_prob_gpu(self, int(device), cp, fptr(x), n, fptr(out)), "crk_made_log_prob_gpu")
        return out

    def log_prob_gpu_device(self, x_device, n, log_prob_device, context_device=None, device=0):
        """log_prob with the arrays in device memory (integer device addresses, e.g. CuPy's
        a.data.ptr): x [n, n_dims] and context [n, n_context] float32 in, log_prob [n] float32
        out, on GPU `device` (crk_made_log_prob_gpu_device); synchronous."""
        check(_lib.crk_made_log_prob_gpu_device(self, int(device), int(context_device or 0) or None,
                                                int(x_device) or None, int(n), int(log_prob_device) or None),
              "crk_made_log_prob_gpu_device")

    def sample_gpu_device(self, n, x_device, context_device=None, seed=0, device=0, first_row=0):
        """sample with the arrays in device memory (integer device addresses): context [n,
        n_context] in, x [n, n_dims] float32 out, on GPU `device` (crk_made_sample_gpu_device,
        or crk_made_sample_gpu_device_from for first_row > 0)."""
        first = _first_row(first_row)
        args = (self, int(device), int(context_device or 0) or None, int(n), int(seed))
        if first:
            check(_lib.crk_made_sample_gpu_device_from(*args, first, int(x_device) or None),
                  "crk_made_sample_gpu_device_from")
        else:
            check(_lib.crk_made_sample_gpu_device(*args, int(x_device) or None), "crk_made_sample_gpu_device")

    def _n_for(self, context, n):
        if n is None:
            if context is None:
                raise _native.InvalidArgument("give n or a context array")
            n = int(np.asarray(context).reshape(-1, max(self.n_context, 1)).shape[0])
        return int(n)

    def sample(self, n=None, context=None, seed=0, n_threads=0, first_row=0):
        """n samples x [float32, n x n_dims], sample i conditioned on context row i and drawn
        from the Philox stream (seed, first_row + i): a sample split into calls with
        consecutive first_row equals one call, bit for bit (crk_made_sample, or
        crk_made_sample_from for first_row > 0)."""
        first = _first_row(first_row)
        n = self._n_for(context, n)
        c, cp = self._context(context, n)
        out = np.empty((n, self.n_dims), dtype=np.float32)
        if first:
            check(_lib.crk_made_sample_from(self, cp, n, int(seed), first, int(n_threads), fptr(out)),
                  "crk_made_sample_from")
        else:
            check(_lib.crk_made_sample(self, cp, n, int(seed), int(n_threads), fptr(out)), "crk_made_sample")
        return out

    def sample_gpu(self, n=None, context=None, seed=0, device=0, first_row=0):
        """sample on GPU `device` (crk_made_sample_gpu, or crk_made_sample_gpu_from for
        first_row > 0); raises NoDevice without one."""
        first = _first_row(first_row)
        n = self._n_for(context, n)
        c, cp = self._context(context, n)
        out = np.empty((n, self.n_dims), dtype=np.float32)
        if first:
            check(_lib.crk_made_sample_gpu_from(self, int(device), cp, n, int(seed), first, fptr(out)),
                  "crk_made_sample_gpu_from")
        else:
            check(_lib.crk_made_sample_gpu(self, int(device), cp, n, int(seed), fptr(out)), "crk_made_sample_gpu")
        return out

    def _given(self, x, given_dims):
        out = np.array(self._x(x), dtype=np.float32, order="C", copy=True)
        g = np.ascontiguousarray(np.asarray(given_dims, dtype=np.int64).ravel())
        if (g < 0).any():
            raise _native.InvalidArgument("given_dims must be >= 0")
        g = np.ascontiguousarray(g.astype(np.uintp))
        return out, g

    def sample_given(self, x, given_dims, context=None, seed=0, n_threads=0, first_row=0):
        """Conditional sampling: the dimensions `given_dims` (the first of order(), in any
        order) keep their values from x [n, n_dims]; the others are drawn from
        p(rest | given, context), row i from the Philox stream (seed, first_row + i). Returns a
        new array; x is not modified (crk_made_sample_given, or crk_made_sample_given_from for
        first_row > 0)."""
        first = _first_row(first_row)
        out, g = self._given(x, given_dims)
        n = out.shape[0]
        c, cp = self._context(context, n)
        if first:
            check(_lib.crk_made_sample_given_from(self, cp, zptr(g), g.size, n, int(seed), first, int(n_threads),
                                                  fptr(out)),
                  "crk_made_sample_given_from")
        else:
            check(_lib.crk_made_sample_given(self, cp, zptr(g), g.size, n, int(seed), int(n_threads), fptr(out)),
                  "crk_made_sample_given")
        return out

    def sample_given_gpu(self, x, given_dims, context=None, seed=0, device=0, first_row=0):
        """sample_given on GPU `device` (crk_made_sample_given_gpu, or
        crk_made_sample_given_gpu_from for first_row > 0); raises NoDevice without one."""
        first = _first_row(first_row)
        out, g = self._given(x, given_dims)
        n = out.shape[0]
        c, cp = self._context(context, n)
        if first:
            check(_lib.crk_made_sample_given_gpu_from(self, int(device), cp, zptr(g), g.size, n, int(seed), first,
                                                      fptr(out)),
                  "crk_made_sample_given_gpu_from")
        else:
            check(_lib.crk_made_sample_given_gpu(self, int(device), cp, zptr(g), g.size, n, int(seed), fptr(out)),
                  "crk_made_sample_given_gpu")
        return out
