"""Training MADE mixture-of-Gaussians emulators (crk_made_train, crk_made_trainer_*): the
paper's single-point recipe by default (SECRET section 3.2: one hidden layer of 200 sigmoid
units, K = 10, random order, Adam at 1e-3, minibatch 50, 90/10 split, at most 500 epochs,
early stopping after 30 epochs without improvement). Data are float32 x [n, n_dims] and
context [n, n_context] in the user's units; the trained model (a crkernels.Made) standardises
internally, so its densities and samples are in those units.

Options (keyword arguments of train_made and MadeTrainer; None or absent: the default of
crk_made_train_options_default, see train_options_default()): hidden_units (a sequence of
1..8 layer widths), n_components, activation ("sigmoid", "tanh", "relu", "leaky_relu", "elu"
or a CRK_ACTIVATION_* integer), order ("random", "natural"), batch_size, learning_rate,
max_epochs, patience (0: never stop early), validation_fraction, seed, n_threads (0: all
cores; the model does not depend on it), context_degrees ("secret", "plain"), weight_decay,
schedule ("constant", "cosine", "step"), schedule_value, schedule_every, adam_beta1,
adam_beta2, adam_epsilon. Bad values raise InvalidArgument with the library's message.
"""

import ctypes
import os
from ctypes import POINTER, Structure, c_double, c_int32, c_size_t, c_uint64, c_void_p

import numpy as np

from . import _native
from ._native import _lib, check, crk_progress_fn, f32, fptr
from .made import ACTIVATIONS, Made

ORDERS = {"random": 0, "natural": 1}
CONTEXT_DEGREES = {"secret": 0, "plain": 1}
SCHEDULES = {"constant": 0, "cosine": 1, "step": 2}


class crk_made_train_options(Structure):
    _fields_ = [
        ("n_hidden_layers", c_size_t),
        ("hidden_units", c_size_t * 8),
        ("n_components", c_size_t),
        ("activation", c_int32),
        ("order", c_int32),
        ("batch_size", c_size_t),
        ("learning_rate", c_double),
        ("max_epochs", c_size_t),
        ("patience", c_size_t),
        ("validation_fraction", c_double),
        ("seed", c_uint64),
        ("n_threads", c_size_t),
        ("context_degrees", c_int32),
        ("weight_decay", c_double),
        ("schedule", c_int32),
        ("schedule_value", c_double),
        ("schedule_every", c_size_t),
        ("adam_beta1", c_double),
        ("adam_beta2", c_double),
        ("adam_epsilon", c_double),
    ]


class crk_made_train_report(Structure):
    _fields_ = [
        ("epochs_run", c_size_t),
        ("best_epoch", c_size_t),
        ("best_validation_nll", c_double),
        ("final_train_nll", c_double),
        ("last_validation_nll", c_double),
        ("seconds", c_double),
    ]


class crk_made_epoch_report(Structure):
    _fields_ = [
        ("epoch", c_size_t),
        ("train_nll", c_double),
        ("validation_nll", c_double),
        ("learning_rate", c_double),
        ("seconds", c_double),
    ]


_F = POINTER(ctypes.c_float)
_H = c_void_p
_O = POINTER(crk_made_train_options)
_lib.crk_made_train_options_default.argtypes = [_O]
_lib.crk_made_train_options_default.restype = None
_lib.crk_made_train.argtypes = [
    _F, c_size_t, _F, c_size_t, c_size_t, _O, crk_progress_fn, c_void_p, POINTER(_H),
    POINTER(crk_made_train_report),
]
_lib.crk_made_train.restype = c_int32
_lib.crk_made_trainer_new.argtypes = [_F, c_size_t, _F, c_size_t, c_size_t, _O, POINTER(_H)]
_lib.crk_made_trainer_new.restype = c_int32
_lib.crk_made_trainer_epoch.argtypes = [_H, crk_progress_fn, c_void_p, POINTER(crk_made_epoch_report)]
_lib.crk_made_trainer_epoch.restype = c_int32
_lib.crk_made_trainer_finished.argtypes = [_H, POINTER(c_int32)]
_lib.crk_made_trainer_finished.restype = c_int32
_lib.crk_made_trainer_report.argtypes = [_H, POINTER(crk_made_train_report)]
_lib.crk_made_trainer_report.restype = c_int32
_lib.crk_made_trainer_model.argtypes = [_H, POINTER(_H)]
_lib.crk_made_trainer_model.restype = c_int32
_lib.crk_made_trainer_checkpoint.argtypes = [_H, ctypes.c_char_p]
_lib.crk_made_trainer_checkpoint.restype = c_int32
_lib.crk_made_trainer_resume.argtypes = [_H, ctypes.c_char_p]
_lib.crk_made_trainer_resume.restype = c_int32
_lib.crk_made_trainer_free.argtypes = [_H]
_lib.crk_made_trainer_free.restype = None

_INTS = ("n_components", "batch_size", "max_epochs", "patience", "seed", "n_threads", "schedule_every")
_FLOATS = ("learning_rate", "validation_fraction", "weight_decay", "schedule_value", "adam_beta1",
           "adam_beta2", "adam_epsilon")
_ENUMS = {"activation": ACTIVATIONS, "order": ORDERS, "context_degrees": CONTEXT_DEGREES,
          "schedule": SCHEDULES}
OPTION_NAMES = ("hidden_units",) + _INTS + _FLOATS + tuple(_ENUMS)


def _name_of(table, value):
    return next((k for k, v in table.items() if v == value and k != "from_file"), value)


def _default_struct():
    o = crk_made_train_options()
    _lib.crk_made_train_options_default(ctypes.byref(o))
    return o


def train_options_default():
    """crk_made_train_options_default as a dict (enums by name: activation "sigmoid", order
    "random", context_degrees "secret", schedule "constant")."""
    o = _default_struct()
    out = {"hidden_units": list(o.hidden_units[: o.n_hidden_layers])}
    for name in _INTS + _FLOATS:
        out[name] = getattr(o, name)
    for name, table in _ENUMS.items():
        out[name] = _name_of(table, getattr(o, name))
    return out


def _enum(name, value, table):
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            known = ", ".join(k for k in table if k != "from_file")
            raise _native.InvalidArgument(f"unknown {name} {value!r} (one of {known})") from None
    return int(value)


def _size(name, value):
    value = int(value)
    if value < 0:
        raise _native.InvalidArgument(f"{name} must be >= 0, got {value}")
    return value


def _options(options):
    """A crk_made_train_options from the defaults and the keyword arguments `options`."""
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown training option(s) {unknown}; known: {list(OPTION_NAMES)}")
    o = _default_struct()
    units = options.get("hidden_units")
    if units is not None:
        units = [_size("hidden_units", u) for u in np.atleast_1d(units).tolist()]
        # More than 8 layers: the count is passed on and the library refuses it by name.
        o.n_hidden_layers = len(units)
        for i in range(8):
            o.hidden_units[i] = units[i] if i < len(units) else 0
    for name in _INTS:
        if options.get(name) is not None:
            value = int(options[name])
            if name == "seed":
                value &= (1 << 64) - 1  # a negative seed: its two's complement bits
            setattr(o, name, _size(name, value))
    for name in _FLOATS:
        if options.get(name) is not None:
            setattr(o, name, float(options[name]))
    for name, table in _ENUMS.items():
        if options.get(name) is not None:
            setattr(o, name, _enum(name, options[name], table))
    return o


def _data(x, context):
    """(context array or None, n_context, x array, n_dims, n) as C-contiguous float32."""
    x = f32(x)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise _native.InvalidArgument(f"x must be [n, n_dims], got shape {x.shape}")
    n, n_dims = x.shape
    if context is None:
        return None, 0, x, n_dims, n
    c = f32(context)
    if c.ndim == 1:
        c = c.reshape(-1, 1)
    if c.ndim != 2 or c.shape[0] != n:
        raise _native.InvalidArgument(f"context must be [{n}, n_context] (a row per row of x), got {c.shape}")
    if c.shape[1] == 0:
        return None, 0, x, n_dims, n
    return c, c.shape[1], x, n_dims, n


class _Progress:
    """A crk_progress_fn around `progress(done, total)`: a true return value cancels; an
    exception inside it cancels too and is raised again by finish()."""

    def __init__(self, progress):
        self.error = None
        self.callback = crk_progress_fn()
        if progress is not None:
            def _cb(done, total, _user):
                try:
                    return 1 if progress(done, total) else 0
                except BaseException as e:  # noqa: BLE001 - raised again after the call
                    self.error = e
                    return 1

            self.callback = crk_progress_fn(_cb)

    def finish(self, status, name):
        if status == _native.CRK_ERR_CANCELLED and self.error is not None:
            try:
                check(status, name)
            except _native.Cancelled as cancelled:
                raise self.error from cancelled
        check(status, name)


def _adopt_made(ptr):
    m = Made.__new__(Made)
    _native.Handle.__init__(m, ptr)
    m._dims()
    return m


def _report(r):
    return {name: getattr(r, name) for name, _ in type(r)._fields_}


def train_made(x, context=None, progress=None, **options):
    """Trains a MADE-MoG on the rows of x [n, n_dims] given context [n, n_context] (None: an
    unconditional model) and returns (model, report) (crk_made_train): the kept model (the
    best on the validation split, else the last) as a crkernels.Made, and a dict with
    epochs_run, best_epoch, best_validation_nll and last_validation_nll (NaN without
    validation), final_train_nll (NLLs per row, in nats, in the user's units) and seconds.
    `progress(done, total)` (optional) is called about every 50 ms with the training rows
    processed and the rows of max_epochs epochs; a true return value cancels (Cancelled), an
    exception inside it cancels and is raised. The model is bit for bit the same for a seed
    on any thread count. See the module's docstring for the options."""
    c, n_context, x, n_dims, n = _data(x, context)
    o = _options(options)
    cb = _Progress(progress)
    out = _H()
    r = crk_made_train_report()
    status = _lib.crk_made_train(fptr(c) if c is not None else None, n_context, fptr(x), n_dims, n,
                                 ctypes.byref(o), cb.callback, None, ctypes.byref(out), ctypes.byref(r))
    cb.finish(status, "crk_made_train")
    return _adopt_made(out.value), _report(r)


class MadeTrainer(_native.Handle):
    """A training run under epoch-by-epoch control (crk_made_trainer_new): the same data and
    options as train_made (the data are copied). epoch() runs one epoch, finished tells
    whether early stopping or max_epochs has ended the run, report() and model() give the
    run so far, checkpoint(path) writes its whole state and resume(path) continues a fresh
    trainer (same data and options; max_epochs, patience and n_threads may differ) exactly as
    if it had not stopped. Calls on one trainer are serialised by the library. Release with
    close() or a ``with`` block."""

    _free = _lib.crk_made_trainer_free

    def __init__(self, x, context=None, **options):
        c, n_context, x, n_dims, n = _data(x, context)
        o = _options(options)
        out = _H()
        check(_lib.crk_made_trainer_new(fptr(c) if c is not None else None, n_context, fptr(x), n_dims, n,
                                        ctypes.byref(o), ctypes.byref(out)), "crk_made_trainer_new")
        super().__init__(out.value)

    def epoch(self, progress=None):
        """Runs one epoch (crk_made_trainer_epoch) and returns its figures as a dict: epoch
        (1 for the first), train_nll, validation_nll (NaN without validation), learning_rate,
        seconds. `progress` as in train_made (rows of this epoch); a cancel raises Cancelled
        after the minibatches before it have updated the model. Running on after the run has
        finished is allowed."""
        cb = _Progress(progress)
        e = crk_made_epoch_report()
        status = _lib.crk_made_trainer_epoch(self, cb.callback, None, ctypes.byref(e))
        cb.finish(status, "crk_made_trainer_epoch")
        return _report(e)

    @property
    def finished(self):
        """Whether the run has ended (epoch limit, or patience epochs without a better
        validation NLL) (crk_made_trainer_finished)."""
        f = c_int32()
        check(_lib.crk_made_trainer_finished(self, ctypes.byref(f)), "crk_made_trainer_finished")
        return bool(f.value)

    def report(self):
        """The report so far, as train_made's (crk_made_trainer_report)."""
        r = crk_made_train_report()
        check(_lib.crk_made_trainer_report(self, ctypes.byref(r)), "crk_made_trainer_report")
        return _report(r)

    def model(self):
        """The kept model so far (the best on the validation split, else the current one) as a
        new crkernels.Made, independent of the trainer (crk_made_trainer_model)."""
        out = _H()
        check(_lib.crk_made_trainer_model(self, ctypes.byref(out)), "crk_made_trainer_model")
        return _adopt_made(out.value)

    def checkpoint(self, path):
        """Writes the run's whole state to `path` (safetensors, crkernels.made_checkpoint.v1;
        written to a temporary file and renamed) (crk_made_trainer_checkpoint)."""
        check(_lib.crk_made_trainer_checkpoint(self, os.fsencode(path)), "crk_made_trainer_checkpoint")

    def resume(self, path):
        """Continues the run from a checkpoint (crk_made_trainer_resume): this trainer must be
        fresh and made with the same data and options. A checkpoint of another model, other
        options or other data raises InvalidArgument naming the difference; the trainer is
        then unchanged."""
        check(_lib.crk_made_trainer_resume(self, os.fsencode(path)), "crk_made_trainer_resume")

    def run(self, progress=None):
        """Runs epochs until finished; returns report()."""
        while not self.finished:
            self.epoch(progress)
        return self.report()
