"""The classifier two-sample test of SECRET section 3.2.2 (crk_two_sample_test): how well a
dense classifier (ReLU hidden layers, sigmoid output, binary cross-entropy, Adam) tells two
samples apart. Test accuracy 0.5: indistinguishable."""

import ctypes
from ctypes import POINTER, Structure, c_double, c_size_t, c_uint64

from ._native import _lib, check, f32, fptr


class crk_two_sample_options(Structure):
    _fields_ = [
        ("n_hidden_layers", c_size_t),
        ("hidden_units", c_size_t * 8),
        ("batch_size", c_size_t),
        ("learning_rate", c_double),
        ("max_epochs", c_size_t),
        ("patience", c_size_t),
        ("validation_fraction", c_double),
        ("test_fraction", c_double),
        ("seed", c_uint64),
    ]


class crk_two_sample_report(Structure):
    _fields_ = [
        ("test_accuracy", c_double),
        ("test_bce", c_double),
        ("null_standard_error", c_double),
        ("validation_accuracy", c_double),
        ("best_validation_bce", c_double),
        ("final_train_bce", c_double),
        ("epochs_run", c_size_t),
        ("best_epoch", c_size_t),
        ("n_per_class", c_size_t),
        ("n_train", c_size_t),
        ("n_validation", c_size_t),
        ("n_test", c_size_t),
    ]


_F = POINTER(ctypes.c_float)
_lib.crk_two_sample_options_default.argtypes = [POINTER(crk_two_sample_options)]
_lib.crk_two_sample_options_default.restype = None
_lib.crk_two_sample_test.argtypes = [
    _F, c_size_t, _F, c_size_t, c_size_t, POINTER(crk_two_sample_options), POINTER(crk_two_sample_report)
]
_lib.crk_two_sample_test.restype = ctypes.c_int32


def two_sample_options_default():
    """The defaults as a dict (crk_two_sample_options_default): the paper's classifier (one
    hidden layer of 32 ReLU units, 100 epochs, Adam at 1e-3), minibatch 50, no early stopping,
    an 80/10/10 train/validation/test split, seed 0."""
    o = crk_two_sample_options()
    _lib.crk_two_sample_options_default(ctypes.byref(o))
    return {
        "hidden_units": list(o.hidden_units[: o.n_hidden_layers]),
        "batch_size": o.batch_size,
        "learning_rate": o.learning_rate,
        "max_epochs": o.max_epochs,
        "patience": o.patience,
        "validation_fraction": o.validation_fraction,
        "test_fraction": o.test_fraction,
        "seed": o.seed,
    }


def two_sample_test(a, b, hidden_units=None, batch_size=None, learning_rate=None, max_epochs=None,
                    patience=None, validation_fraction=None, test_fraction=None, seed=None):
    """Trains a classifier to tell the rows of `a` ([n_a, n_features], label 0) from those of
    `b` ([n_b, n_features], label 1) on a balanced, stratified split (min(n_a, n_b) rows of
    each) and returns its report as a dict: test_accuracy (0.5 = indistinguishable), test_bce
    [nats], null_standard_error (sqrt(0.25 / n_test)), validation_accuracy,
    best_validation_bce, final_train_bce, epochs_run, best_epoch, n_per_class, n_train,
    n_validation, n_test. Arguments left as None take crk_two_sample_options_default's values.
    Deterministic for a seed. Bad input raises InvalidArgument (NaN, zero variance, too few
    rows, bad settings)."""
    a = f32(a)
    b = f32(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be 2-D with the same number of columns, got {a.shape} and {b.shape}")
    o = crk_two_sample_options()
    _lib.crk_two_sample_options_default(ctypes.byref(o))
    if hidden_units is not None:
        units = [int(u) for u in hidden_units]
        if not 1 <= len(units) <= 8:
            raise ValueError(f"1 to 8 hidden layers, got {len(units)}")
        o.n_hidden_layers = len(units)
        for i, u in enumerate(units):
            o.hidden_units[i] = u
    for name, value, kind in [
        ("batch_size", batch_size, int), ("learning_rate", learning_rate, float),
        ("max_epochs", max_epochs, int), ("patience", patience, int),
        ("validation_fraction", validation_fraction, float), ("test_fraction", test_fraction, float),
        ("seed", seed, int),
    ]:
        if value is not None:
            setattr(o, name, kind(value))
    r = crk_two_sample_report()
    check(_lib.crk_two_sample_test(fptr(a), a.shape[0], fptr(b), b.shape[0], a.shape[1], ctypes.byref(o),
                                   ctypes.byref(r)), "crk_two_sample_test")
    return {name: getattr(r, name) for name, _ in crk_two_sample_report._fields_}
