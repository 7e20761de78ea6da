"""crkernels.train_made and crkernels.MadeTrainer (crk_made_train, crk_made_trainer_*): the
defaults are the paper's, a conditional Gaussian comes within 0.05 nats per row of its
closed-form NLL, progress and cancellation, the same seed gives the same model, a checkpoint
resumed in a fresh trainer continues bit for bit, and bad input raises with the library's
message."""

import math

import numpy as np
import pytest

import crkernels

SMALL = dict(hidden_units=[8], n_components=2, max_epochs=3, patience=0, seed=3, n_threads=1)


def conditional_gaussian(n, rng):
    """c ~ U(0, 1); x1 | c ~ N(2 c, 0.3); x2 | x1, c ~ N(0.5 x1 - c, 0.2). Returns (c [n, 1],
    x [n, 2], the true -ln p(x | c) per row)."""
    c = rng.uniform(size=n)
    x1 = 2.0 * c + 0.3 * rng.standard_normal(n)
    x2 = 0.5 * x1 - c + 0.2 * rng.standard_normal(n)

    def log_normal(z, sd):
        return -0.5 * (z / sd) ** 2 - math.log(sd) - 0.5 * math.log(2.0 * math.pi)

    nll = -(log_normal(x1 - 2.0 * c, 0.3) + log_normal(x2 - (0.5 * x1 - c), 0.2))
    return c[:, None], np.stack([x1, x2], axis=1), nll


@pytest.fixture(scope="module")
def data():
    return conditional_gaussian(600, np.random.default_rng(5))


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def test_defaults_are_the_papers():
    o = crkernels.train_options_default()
    assert o["hidden_units"] == [200] and o["n_components"] == 10 and o["activation"] == "sigmoid"
    assert (o["batch_size"], o["learning_rate"], o["validation_fraction"]) == (50, 1e-3, 0.1)
    assert (o["max_epochs"], o["patience"], o["order"], o["context_degrees"]) == (500, 30, "random", "secret")
    assert o["schedule"] == "constant" and o["seed"] == 0 and o["n_threads"] == 0


def test_conditional_gaussian_near_closed_form():
    rng = np.random.default_rng(0)
    c, x, _ = conditional_gaussian(6000, rng)
    ct, xt, true_nll = conditional_gaussian(4000, rng)
    calls = []
    model, report = crkernels.train_made(
        x, c, progress=lambda done, total: calls.append((done, total)), hidden_units=[32], n_components=3,
        batch_size=64, max_epochs=60, patience=10, seed=7)
    assert isinstance(model, crkernels.Made) and model.dims == (1, 2, 3)
    assert 1 <= report["best_epoch"] <= report["epochs_run"] <= 60
    assert calls and all(done <= total for done, total in calls)
    nll = -model.log_prob(xt, ct).astype(np.float64).mean()
    assert abs(nll - true_nll.mean()) < 0.05, (nll, true_nll.mean(), report)
    assert abs(report["best_validation_nll"] - true_nll.mean()) < 0.1, report
    model.close()


def test_same_seed_same_model_on_any_thread_count(data):
    c, x, _ = data
    a, ra = crkernels.train_made(x, c, **SMALL)
    b, rb = crkernels.train_made(x, c, **dict(SMALL, n_threads=2))
    assert np.array_equal(bits(a.log_prob(x, c)), bits(b.log_prob(x, c)))
    assert ra["final_train_nll"] == rb["final_train_nll"] and ra["epochs_run"] == rb["epochs_run"] == 3
    other, _ = crkernels.train_made(x, c, **dict(SMALL, seed=4))
    assert not np.array_equal(bits(a.log_prob(x, c)), bits(other.log_prob(x, c)))


def test_unconditional_and_options_by_name(data):
    _, x, _ = data
    model, report = crkernels.train_made(x, **dict(SMALL, activation="tanh", order="natural", schedule="cosine",
                                                    schedule_value=0.1, validation_fraction=0.0))
    assert model.dims == (0, 2, 2) and list(model.order()) == [0, 1]
    assert math.isnan(report["best_validation_nll"]) and report["best_epoch"] == 3
    assert np.isfinite(model.log_prob(x)).all()


def test_checkpoint_resume_is_bit_for_bit(data, tmp_path):
    c, x, _ = data
    straight, _ = crkernels.train_made(x, c, **SMALL)
    with crkernels.MadeTrainer(x, c, **SMALL) as t:
        e = t.epoch()
        assert e["epoch"] == 1 and np.isfinite(e["train_nll"]) and e["learning_rate"] == 1e-3
        assert t.epoch()["epoch"] == 2 and not t.finished
        path = tmp_path / "run.safetensors"
        t.checkpoint(path)
    resumed = crkernels.MadeTrainer(x, c, **dict(SMALL, n_threads=2))
    resumed.resume(str(path))
    assert resumed.epoch()["epoch"] == 3 and resumed.finished
    assert resumed.report()["epochs_run"] == 3
    model = resumed.model()
    assert np.array_equal(bits(straight.log_prob(x, c)), bits(model.log_prob(x, c)))
    resumed.close()
    assert np.isfinite(model.log_prob(x, c)).all()  # the model outlives its trainer

    # run() goes on to the end: the same as train_made.
    with crkernels.MadeTrainer(x, c, **SMALL) as t:
        assert t.run()["epochs_run"] == 3
        assert np.array_equal(bits(straight.log_prob(x, c)), bits(t.model().log_prob(x, c)))

    # A checkpoint of another model is refused by name and leaves the trainer fresh.
    other = crkernels.MadeTrainer(x, c, **dict(SMALL, hidden_units=[9]))
    with pytest.raises(crkernels.InvalidArgument, match="crk_made_trainer_resume: invalid argument: .+"):
        other.resume(path)
    with pytest.raises(crkernels.Io):
        other.resume(tmp_path / "missing.safetensors")
    assert other.report()["epochs_run"] == 0 and other.epoch()["epoch"] == 1


def test_progress_cancels(data):
    c, x, _ = data
    with pytest.raises(crkernels.Cancelled, match="crk_made_train"):
        crkernels.train_made(x, c, progress=lambda done, total: True, **SMALL)

    def boom(done, total):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        crkernels.train_made(x, c, progress=boom, **SMALL)
    with crkernels.MadeTrainer(x, c, **SMALL) as t:
        with pytest.raises(crkernels.Cancelled, match="crk_made_trainer_epoch"):
            t.epoch(progress=lambda done, total: True)


def test_bad_input_raises_the_librarys_message(data):
    c, x, _ = data
    cases = [
        (dict(hidden_units=[0]), "hidden layer 0 has 0 units"),
        (dict(hidden_units=[4] * 9), "n_hidden_layers must be 1..8, got 9"),
        (dict(hidden_units=[]), "n_hidden_layers must be 1..8, got 0"),
        (dict(n_components=0), "n_components = 0"),
        (dict(batch_size=0), "batch_size must be at least 1"),
        (dict(learning_rate=-1e-3), "learning_rate must be finite and > 0"),
        (dict(learning_rate=float("nan")), "learning_rate must be finite and > 0"),
        (dict(validation_fraction=1.0), r"validation_fraction must be in \[0, 1\)"),
        (dict(activation=99), "unknown activation 99"),
        (dict(order=5), "unknown order 5"),
        (dict(schedule=7), "unknown schedule 7"),
    ]
    for options, message in cases:
        with pytest.raises(crkernels.InvalidArgument, match="crk_made_train: invalid argument: .*" + message):
            crkernels.train_made(x, c, **dict(SMALL, **options))
    with pytest.raises(crkernels.InvalidArgument, match="crk_made_trainer_new: invalid argument: hidden layer 0"):
        crkernels.MadeTrainer(x, c, **dict(SMALL, hidden_units=[0]))
    nan = x.copy()
    nan[3, 1] = np.nan
    for bad_x, bad_c in [(nan, c), (x[:10], c[:10]), (np.ones_like(x), c)]:
        with pytest.raises(crkernels.InvalidArgument, match="crk_made_train: invalid argument: .+"):
            crkernels.train_made(bad_x, bad_c, **SMALL)
    # Checked here: names the library does not know, and a context of the wrong length.
    with pytest.raises(crkernels.InvalidArgument, match="unknown activation 'softsign'"):
        crkernels.train_made(x, c, activation="softsign")
    with pytest.raises(crkernels.InvalidArgument, match="context must be"):
        crkernels.train_made(x, c[:-1])
    with pytest.raises(TypeError, match="unknown training option"):
        crkernels.train_made(x, c, n_epochs=3)
    t = crkernels.MadeTrainer(x, c, **SMALL)
    t.close()
    with pytest.raises(crkernels.NullPointer):
        t.epoch()
    with pytest.raises(crkernels.NullPointer):
        t.finished
