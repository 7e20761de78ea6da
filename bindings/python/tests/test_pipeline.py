"""crkernels.pipeline: the wrappers around the crk tool.

Two parts: the wrappers' own logic against a stand-in crk (a small Python script that records
its arguments and writes what crk would), which always runs; and the real crk end to end
(grid, shards and merge, train, sample, evaluate, fit, errors), which runs where a crk binary
is found (pipeline.crk_path()) and skips with a message otherwise, or fails under
CRKERNELS_REQUIRE_CRK=1 (scripts/test-wheel.sh sets it when the checkout has cli/)."""

import json
import os
import re
import stat
import sys
import textwrap

import numpy as np
import pytest

import crkernels
from crkernels import pipeline

POINTS = np.array([[1.5, 4.5, 2.2, 0.6, 3.0], [2.0, 4.0, 2.4, 0.4, 1.0]])

# ---------------------------------------------------------------------------------------
# A stand-in crk
# ---------------------------------------------------------------------------------------

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    import numpy as np
    args = sys.argv[1:]
    with open(os.environ["FAKE_CRK_LOG"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    def opt(name, default=None):
        return args[args.index(name) + 1] if name in args else default
    cmd = args[0] if args else ""
    if os.environ.get("FAKE_CRK_FAIL"):
        sys.stderr.write("progress 10%\\r progress 20%\\r\\n")
        sys.stderr.write("error: " + os.environ["FAKE_CRK_FAIL"] + "\\n")
        sys.exit(2)
    if cmd == "--help":
        print("usage: crk <grid|train|evaluate|sample|fit>")
    elif cmd == "grid":
        out = opt("--out")
        os.makedirs(out, exist_ok=True)
        if "--merge" in args:
            sys.exit(0)
        rows = [l.strip() for l in open(opt("--points")) if l.strip()]
        assert rows[0] == "sn_rate_1e4_per_Myr,log10_ecut_GeV,gamma,delta,kappa0_1e28_cm2_per_s", rows[0]
        points = [[float(v) for v in r.split(",")] for r in rows[1:]]
        n = int(opt("--realisations"))
        for i, p in enumerate(points):
            psi = (np.arange(n * 19, dtype=np.float32).reshape(n, 19) + 1000 * i)
            np.save(os.path.join(out, "psi_%d.npy" % i), psi)
        json.dump({{"points": [{{"parameters": p}} for p in points], "realisations": n}},
                  open(os.path.join(out, "manifest.json"), "w"))
    elif cmd == "train":
        out = opt("--out")
        open(out, "wb").close()
        json.dump({{"best_epoch": 3, "epochs": int(opt("--epochs", 0))}},
                  open(os.path.splitext(out)[0] + ".json", "w"))
        print("trained")
    elif cmd == "evaluate":
        out = opt("--out")
        os.makedirs(out, exist_ok=True)
        json.dump({{"max_abs_delta_q": 0.01}}, open(os.path.join(out, "evaluation.json"), "w"))
    elif cmd == "sample":
        n = int(opt("--n"))
        np.save(opt("--out"), np.full((n, 19), float(opt("--first-row", 0)), np.float32))
    elif cmd == "fit":
        lines = open(opt("--spectrum")).read().splitlines()
        json.dump({{"csv": lines}}, open(opt("--out"), "w"))
    else:
        sys.stderr.write("error: unknown command %r\\n" % cmd)
        sys.exit(2)
    """
)


@pytest.fixture
def fake_crk(tmp_path, monkeypatch):
    path = tmp_path / "fake_crk"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("CRKERNELS_CRK", str(path))
    monkeypatch.setenv("FAKE_CRK_LOG", str(log))
    monkeypatch.delenv("FAKE_CRK_FAIL", raising=False)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def test_crk_path_order(tmp_path, monkeypatch, fake_crk):
    assert pipeline.crk_path() == os.environ["CRKERNELS_CRK"]
    monkeypatch.setenv("CRKERNELS_CRK", str(tmp_path / "missing"))
    with pytest.raises(pipeline.CrkError, match="CRKERNELS_CRK"):
        pipeline.crk_path()
    assert pipeline.crk_path(required=False) is None
    assert issubclass(pipeline.CrkError, crkernels.Error)


def test_grid_writes_csv_and_loads_shards(tmp_path, fake_crk):
    out = tmp_path / "grid"
    psi = pipeline.grid(POINTS, realisations=7, seed=3, out=out, threads=2)
    (args,) = fake_crk()
    assert args == ["grid", "--points", str(out / "points.csv"), "--realisations", "7", "--seed", "3",
                    "--out", str(out), "--threads", "2"]
    lines = (out / "points.csv").read_text().splitlines()
    assert lines[0] == ",".join(pipeline.PARAMETER_NAMES)
    np.testing.assert_array_equal(np.array([[float(v) for v in r.split(",")] for r in lines[1:]]), POINTS)

    assert isinstance(psi, pipeline.GridPsi)
    assert psi.shape == (2, 7, 19) and psi.dtype == np.float32 and len(psi) == 2
    full = np.asarray(psi)
    assert full.shape == (2, 7, 19)
    for i in range(2):
        expected = np.load(out / f"psi_{i}.npy")
        np.testing.assert_array_equal(full[i], expected)
        np.testing.assert_array_equal(psi[i], expected)
        assert isinstance(psi[i], np.memmap)
    np.testing.assert_array_equal(psi[1, 3], full[1, 3])
    np.testing.assert_array_equal(psi[:, :, 4], full[:, :, 4])
    np.testing.assert_array_equal(psi[-1], full[-1])

    params, psi2, manifest = pipeline.load_grid(out)
    np.testing.assert_array_equal(params, POINTS)
    assert psi2.shape == (2, 7, 19) and manifest["realisations"] == 7

    # The same points again reuse the CSV; other points do not overwrite it.
    pipeline.grid(POINTS, realisations=7, seed=3, out=out)
    with pytest.raises(ValueError, match="other points"):
        pipeline.grid(POINTS[:1], realisations=7, seed=3, out=out)
    assert len(fake_crk()) == 2


def test_grid_csv_path_shard_and_merge(tmp_path, fake_crk):
    csv_path = tmp_path / "points.csv"
    csv_path.write_text(",".join(pipeline.PARAMETER_NAMES) + "\n1.5,4.5,2.2,0.6,3\n")
    assert pipeline.grid(csv_path, 5, 1, tmp_path / "g", shard=(1, 2)) is None
    assert pipeline.grid(str(csv_path), 5, 1, tmp_path / "g", shard="2/2") is None
    params, psi, _ = pipeline.merge_grid(tmp_path / "g")
    calls = fake_crk()
    assert calls[0][-2:] == ["--shard", "1/2"] and calls[1][-2:] == ["--shard", "2/2"]
    assert calls[2] == ["grid", "--merge", "--out", str(tmp_path / "g")]
    np.testing.assert_array_equal(params, [[1.5, 4.5, 2.2, 0.6, 3.0]])
    assert psi.shape == (1, 5, 19)


def test_bad_points_rejected_before_running(tmp_path, fake_crk):
    with pytest.raises(ValueError, match=r"\[P\]\[5\]"):
        pipeline.grid(np.zeros((2, 4)), 5, 1, tmp_path / "g")
    assert fake_crk() == []


def test_failure_raises_with_crk_stderr(tmp_path, fake_crk, monkeypatch):
    monkeypatch.setenv("FAKE_CRK_FAIL", "--points: row 3: gamma = 9 is outside the domain")
    with pytest.raises(pipeline.CrkError) as e:
        pipeline.grid(POINTS, 5, 1, tmp_path / "g")
    assert str(e.value) == "crk grid: progress 20%\nerror: --points: row 3: gamma = 9 is outside the domain"
    assert e.value.returncode == 2
    assert e.value.command[1] == "grid"
    assert "gamma = 9" in e.value.stderr


def test_train_evaluate_fit_sample_arguments(tmp_path, fake_crk):
    model = tmp_path / "m.safetensors"
    report = pipeline.train(tmp_path / "g", model, epochs=4, hidden=[200, 200], learning_rate=1e-3,
                            batch_size=None, resume=True, quiet=False)
    assert report["best_epoch"] == 3 and report["epochs"] == 4
    assert report["model"] == str(model) and report["stdout"] == "trained\n"
    ev = pipeline.evaluate(model, tmp_path / "g", tmp_path / "rep", threads=2)
    assert ev == {"max_abs_delta_q": 0.01}
    fit = pipeline.fit(model, [10.0, 100.0], [1e-3, 2e-6], sigma=[1e-4, 2e-7], chains=4,
                       prior=[(0.5, 3.0), (3.5, 5.5)])
    assert fit["csv"] == ["energy_GeV,flux,flux_sigma", "10.0,0.001,0.0001", "100.0,2e-06,2e-07"]
    fit = pipeline.fit(model, [10.0, 100.0], [1e-3, 2e-6])
    assert fit["csv"][0] == "energy_GeV,flux"
    x = pipeline.sample(model, POINTS[0], n=3, seed=5, first_row=9, use_cli=True)
    assert x.shape == (3, 19) and (x == 9).all()
    calls = fake_crk()
    assert calls[0] == ["train", "--grid", str(tmp_path / "g"), "--out", str(model), "--epochs", "4",
                        "--hidden", "200,200", "--learning-rate", "0.001", "--resume"]
    assert calls[1] == ["evaluate", "--model", str(model), "--grid", str(tmp_path / "g"), "--out",
                        str(tmp_path / "rep"), "--threads", "2"]
    assert calls[2][-4:] == ["--chains", "4", "--prior", "0.5:3.0,3.5:5.5"]
    assert calls[4][:8] == ["sample", "--model", str(model), "--params", "1.5,4.5,2.2,0.6,3.0",
                            "--n", "3", "--seed"]
    assert calls[4][8:] == ["5", "--out", calls[4][10], "--first-row", "9"]
    with pytest.raises(ValueError, match="sigma"):
        pipeline.fit(model, [10.0, 100.0], [1e-3, 2e-6], sigma=[1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------
# The real crk
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_crk():
    if os.environ.get("CRKERNELS_CRK") and not os.path.exists(os.environ["CRKERNELS_CRK"]):
        pytest.fail(f"CRKERNELS_CRK={os.environ['CRKERNELS_CRK']} does not exist")
    path = pipeline.crk_path(required=False)
    if path is None:
        message = ("no crk binary (pipeline.crk_path()): build it with `cargo build --release -p crk`, "
                   "install the package with pip, or set CRKERNELS_CRK")
        if os.environ.get("CRKERNELS_REQUIRE_CRK", "") not in ("", "0"):
            pytest.fail(message + ", and CRKERNELS_REQUIRE_CRK is set")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def grid_dir(real_crk, tmp_path_factory):
    out = tmp_path_factory.mktemp("crk") / "grid"
    psi = pipeline.grid(POINTS, realisations=64, seed=11, out=out)
    return out, psi


def test_real_grid(grid_dir):
    out, psi = grid_dir
    assert psi.shape == (2, 64, 19) and psi.dtype == np.float32
    a = np.asarray(psi)
    assert np.isfinite(a).all()
    params, psi2, manifest = pipeline.load_grid(out)
    np.testing.assert_array_equal(params, POINTS)
    np.testing.assert_array_equal(np.asarray(psi2), a)
    assert isinstance(manifest, dict)
    # A finished run started again changes nothing.
    again = pipeline.grid(POINTS, realisations=64, seed=11, out=out)
    np.testing.assert_array_equal(np.asarray(again), a)


def test_real_grid_shards_equal_unsplit(grid_dir, tmp_path):
    out, psi = grid_dir
    split = tmp_path / "split"
    for k in (1, 2):
        assert pipeline.grid(out / "points.csv", 64, 11, split, shard=(k, 2)) is None
    params, psi2, _ = pipeline.merge_grid(split)
    np.testing.assert_array_equal(params, POINTS)
    np.testing.assert_array_equal(np.asarray(psi2), np.asarray(psi))


def test_real_errors_carry_crk_message(grid_dir, tmp_path):
    bad = POINTS.copy()
    bad[1, 2] = 9.0  # gamma outside [1, 4]
    with pytest.raises(pipeline.CrkError) as e:
        pipeline.grid(bad, 4, 1, tmp_path / "bad")
    assert e.value.returncode != 0
    assert "gamma" in str(e.value), str(e.value)
    # Another run's directory: refused, nothing overwritten.
    out, psi = grid_dir
    with pytest.raises(pipeline.CrkError, match="manifest"):
        pipeline.grid(out / "points.csv", realisations=65, seed=11, out=out)
    np.testing.assert_array_equal(np.asarray(pipeline.load_grid(out)[1]), np.asarray(psi))
    with pytest.raises(pipeline.CrkError) as e:
        pipeline.evaluate(tmp_path / "no_such_model.safetensors", out, tmp_path / "r")
    assert "no_such_model" in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def model(grid_dir):
    out, _ = grid_dir
    path = out.parent / "model.safetensors"
    report = pipeline.train(out, path, epochs=3, hidden=[16, 16], components=2, seed=1, threads=2)
    assert os.path.exists(path)
    return path, report


def test_real_train(model):
    path, report = model
    assert isinstance(report, dict) and report["model"] == str(path)
    with crkernels.Made(str(path)) as m:
        assert (m.n_dims, m.n_context) == (19, 5)


def test_real_sample(model):
    path, _ = model
    x = pipeline.sample(path, POINTS[0], n=50, seed=4)
    assert x.shape == (50, 19) and x.dtype == np.float32 and np.isfinite(x).all()
    # Rows depend on (seed, row) only: two calls with consecutive first rows equal one, and
    # the CLI gives the in-process rows.
    parts = [pipeline.sample(path, POINTS[0], n=20, seed=4),
             pipeline.sample(path, POINTS[0], n=30, seed=4, first_row=20)]
    np.testing.assert_array_equal(np.concatenate(parts), x)
    np.testing.assert_array_equal(pipeline.sample(path, POINTS[0], n=50, seed=4, use_cli=True), x)
    np.testing.assert_array_equal(
        pipeline.sample(path, POINTS[0], n=30, seed=4, first_row=20, use_cli=True), x[20:])


def test_real_evaluate(model, grid_dir, tmp_path):
    path, _ = model
    out, _ = grid_dir
    report = pipeline.evaluate(path, out, tmp_path / "report", samples=64, classifier_rows=64,
                               classifier_epochs=2)
    assert isinstance(report, dict) and report
    assert (tmp_path / "report" / "evaluation.json").exists()


def test_real_fit(model, grid_dir, tmp_path):
    if not re.search(r"^\s+fit\s", pipeline.run("--help"), re.M):
        pytest.skip("this crk has no fit command yet")
    path, _ = model
    _, psi = grid_dir
    energy = pipeline.GRID_ENERGIES_GEV
    flux = np.exp(np.median(np.asarray(psi[0], dtype=np.float64), axis=0)) / energy**3
    result = pipeline.fit(path, energy, flux, sigma=0.1 * flux, out=tmp_path / "fit.json",
                          chains=2, warmup=40, draws=40, seed=3)
    assert isinstance(result, dict) and result
    assert json.loads((tmp_path / "fit.json").read_text()) == result
    names = [p["name"] for p in result["parameters"]]
    assert names == list(pipeline.PARAMETER_NAMES), names
    # A spectrum at energies the model does not have: crk's message names the energy.
    with pytest.raises(pipeline.CrkError, match="energ"):
        pipeline.fit(path, energy * 1.1, flux)
