"""The SECRET pipeline from Python: grid, train, evaluate, sample and fit, returning NumPy arrays
and dicts, for notebooks.

These are thin wrappers around the command-line tool ``crk`` (the workspace crate in cli/):
each runs one ``crk`` subcommand in a subprocess and reads what it wrote (``.npy`` shards,
JSON reports). The work, its checks and its error messages are the tool's; a failing command
raises :class:`CrkError` with the message crk printed on stderr. ``sample`` runs in-process
through the C ABI instead (``Made.sample`` with ``first_row``) where the library has it.

The ``crk`` binary is looked up in this order (:func:`crk_path`):

1. the path in the environment variable ``CRKERNELS_CRK``;
2. the binary bundled inside this package, ``crkernels/bin/crk`` (``pip install
   ./bindings/python`` and the wheels of ``pip wheel`` put it there);
3. ``target/release/crk`` of a source checkout (after ``cargo build --release -p crk``);
4. ``crk`` on PATH.

Example (a notebook)::

    import numpy as np
    from crkernels import pipeline as crk

    points = [[1.5, 4.5, 2.2, 0.6, 3.0],        # table 1's parameters, table 1's units
              [2.0, 4.0, 2.4, 0.5, 1.0]]        # (crk.PARAMETER_NAMES)
    psi = crk.grid(points, realisations=1000, seed=1, out="grid")   # [2][1000][19] float32
    report = crk.train("grid", "model.safetensors", epochs=50)
    ev = crk.evaluate("model.safetensors", "heldout_grid", "report")
    x = crk.sample("model.safetensors", points[0], n=10000, seed=7)  # [10000][19] psi
    fit = crk.fit("model.safetensors", energy_GeV, flux, sigma)
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np

from ._native import Error

__all__ = [
    "CrkError",
    "GRID_ENERGIES_GEV",
    "GridPsi",
    "PARAMETER_NAMES",
    "crk_path",
    "evaluate",
    "fit",
    "grid",
    "load_grid",
    "merge_grid",
    "run",
    "sample",
    "train",
]

#: The grid's parameters (the header of `crk grid --points` CSVs), table 1's units, in the
#: order of a conditional model's context.
PARAMETER_NAMES = (
    "sn_rate_1e4_per_Myr",
    "log10_ecut_GeV",
    "gamma",
    "delta",
    "kappa0_1e28_cm2_per_s",
)

#: The 19 grid energies of psi = ln(E^3 phi) [GeV]: 10^1.5 .. 10^4.5.
GRID_ENERGIES_GEV = np.logspace(1.5, 4.5, 19)

_EXE = ".exe" if sys.platform == "win32" else ""


class CrkError(Error):
    """A ``crk`` command failed. The message is what crk printed on stderr; ``returncode``,
    ``command`` (the argument list) and ``stderr`` (all of it) are attributes."""

    def __init__(self, message, returncode=None, command=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.command = command
        self.stderr = stderr


# ---------------------------------------------------------------------------------------
# Finding and running crk
# ---------------------------------------------------------------------------------------


def _is_console_wrapper(path):
    """True for the `crk` console script this package installs (it runs the bundled binary,
    so it is no candidate of its own)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"crkernels.pipeline" in head


def _candidates():
    env = os.environ.get("CRKERNELS_CRK")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "bin", "crk" + _EXE)
    yield os.path.normpath(os.path.join(here, "..", "..", "..", "target", "release", "crk" + _EXE))
    found = shutil.which("crk")
    if found and not _is_console_wrapper(found):
        yield found


def crk_path(required=True):
    """The ``crk`` binary that the wrappers run: $CRKERNELS_CRK, the binary bundled in the
    package, target/release/crk of a source checkout, or crk on PATH. Raises CrkError when
    there is none (None with ``required=False``)."""
    env = os.environ.get("CRKERNELS_CRK")
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    if not required:
        return None
    if env:
        raise CrkError(f"CRKERNELS_CRK={env!r} is not an executable file")
    raise CrkError(
        "no crk binary: install the package with pip (which builds and bundles it), run "
        "`cargo build --release -p crk` in the source checkout, or set CRKERNELS_CRK"
    )


def _pump(pipe, chunks, echo):
    read = getattr(pipe, "read1", None) or pipe.read
    while True:
        chunk = read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if echo is not None:
            try:
                echo.write(chunk.decode("utf-8", "replace"))
                echo.flush()
            except Exception:
                pass


def _message(stderr, returncode):
    # The last lines of stderr: crk's error message (of a line redrawn with \r, such as a
    # progress bar, its last state).
    lines = []
    for line in stderr.split("\n"):
        states = [s.strip() for s in line.split("\r") if s.strip()]
        if states:
            lines.append(states[-1])
    text = "\n".join(lines[-20:])
    return text or f"crk exited with status {returncode} and printed nothing on stderr"


def run(*args, verbose=False):
    """Runs ``crk ARGS...`` and returns its stdout (str). ``verbose``: also show crk's stdout
    and stderr (progress, summaries) as it runs. A non-zero exit raises CrkError with crk's
    stderr; an interrupt (KeyboardInterrupt) stops crk first (crk grid resumes where it was
    stopped when run again)."""
    command = [crk_path()] + [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = [], []
    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, out, sys.stdout if verbose else None)),
        threading.Thread(target=_pump, args=(proc.stderr, err, sys.stderr if verbose else None)),
    ]
    for t in threads:
        t.daemon = True
        t.start()
    try:
        returncode = proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for t in threads:
            t.join()
        proc.stdout.close()
        proc.stderr.close()
    stdout = b"".join(out).decode("utf-8", "replace")
    stderr = b"".join(err).decode("utf-8", "replace")
    if returncode != 0:
        name = args[0] if args else ""
        raise CrkError(f"crk {name}: {_message(stderr, returncode)}", returncode, command, stderr)
    return stdout


def _flag(name):
    return "--" + name.replace("_", "-")


def _value(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(_value(v) for v in np.asarray(value).ravel().tolist())
    if isinstance(value, float):
        return repr(value)
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _options(options):
    """Keyword options as crk flags: learning_rate=1e-3 -> --learning-rate 1e-3; lists join
    with commas (hidden=[200, 200] -> --hidden 200,200); True -> the bare flag; None and False
    are left out."""
    args = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        if value is True:
            args.append(_flag(name))
        else:
            args += [_flag(name), _value(value)]
    return args


# ---------------------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------------------


class GridPsi:
    """psi of a grid directory, [P][N][19] float32, without reading it into memory: point i is
    ``psi_<i>.npy`` opened with np.load(mmap_mode="r"). ``psi[i]`` is point i's array
    [N][19] (a read-only memory map); ``psi[i, r]``, ``psi[a:b, :, e]`` and other indexes
    with a point index first read only the points they name; ``np.asarray(psi)`` reads all
    (P x N x 19 x 4 bytes)."""

    def __init__(self, directory, n_points):
        self.directory = os.fspath(directory)
        self._arrays = [None] * int(n_points)

    def path(self, i):
        return os.path.join(self.directory, f"psi_{i}.npy")

    def point(self, i):
        """Point i's psi [N][19] (memory-mapped, read-only)."""
        i = range(len(self._arrays))[i]
        if self._arrays[i] is None:
            self._arrays[i] = np.load(self.path(i), mmap_mode="r")
        return self._arrays[i]

    def __len__(self):
        return len(self._arrays)

    @property
    def shape(self):
        if not self._arrays:
            return (0, 0, len(GRID_ENERGIES_GEV))
        return (len(self._arrays),) + tuple(self.point(0).shape)

    @property
    def dtype(self):
        return self.point(0).dtype if self._arrays else np.dtype(np.float32)

    @property
    def ndim(self):
        return 3

    def __iter__(self):
        for i in range(len(self)):
            yield self.point(i)

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):
            index, rest = (index[0], index[1:]) if index else (slice(None), ())
        if isinstance(index, (int, np.integer)):
            return self.point(int(index))[rest] if rest else self.point(int(index))
        points = np.arange(len(self))[index]
        return np.stack([np.asarray(self.point(int(i))[rest]) for i in np.atleast_1d(points)])

    def __array__(self, dtype=None, copy=None):
        a = self[:] if len(self) else np.zeros(self.shape, np.float32)
        return a.astype(dtype, copy=False) if dtype is not None else a

    def __repr__(self):
        return f"GridPsi({self.directory!r}, shape={self.shape})"


def _write_points_csv(points, path):
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1:
        points = points.reshape(1, -1)
    if points.ndim != 2 or points.shape[1] != len(PARAMETER_NAMES):
        raise ValueError(
            f"points: expected an array [P][{len(PARAMETER_NAMES)}] "
            f"({', '.join(PARAMETER_NAMES)}), got shape {points.shape}"
        )
    if points.shape[0] == 0:
        raise ValueError("points: no points")
    text = ",".join(PARAMETER_NAMES) + "\n"
    text += "".join(",".join(repr(float(v)) for v in row) + "\n" for row in points)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return path
        raise ValueError(
            f"{path} exists and holds other points: give another `out`, or the CSV's path as "
            "`points` (nothing was overwritten)"
        )
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def _read_points_csv(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    header = [c.strip() for c in rows[0]]
    index = [header.index(name) for name in PARAMETER_NAMES]
    return np.array([[float(r[i]) for i in index] for r in rows[1:]], dtype=np.float64)


def _shard(shard):
    if shard is None:
        return None
    if isinstance(shard, str):
        return shard
    k, n = shard
    return f"{int(k)}/{int(n)}"


def grid(points, realisations, seed, out, shard=None, threads=0, verbose=False, **options):
    """Simulates spectra at grid points: ``crk grid --points CSV --realisations N --seed S
    --out DIR``. Realisation r of point i depends on (seed, i, r) only; a stopped run started
    again with the same arguments resumes.

    points: an array [P][5] of PARAMETER_NAMES values (written to ``out/points.csv``) or the
    path of such a CSV. shard: "k/N" or (k, N), the k-th of N parts (see merge_grid).
    threads: 0 for all cores. Further keyword options become crk flags (precision="f32" for
    the f32 tier: each spectrum within 1e-5 of the exact one).

    Returns psi = ln(E^3 phi) at GRID_ENERGIES_GEV as a GridPsi [P][N][19] float32 (lazy,
    memory-mapped; np.asarray(psi) reads it all), or None for a shard (load_grid reads the
    directory once every part is done)."""
    out = os.fspath(out)
    if isinstance(points, (str, os.PathLike)):
        csv_path = os.fspath(points)
    else:
        os.makedirs(out, exist_ok=True)
        csv_path = _write_points_csv(points, os.path.join(out, "points.csv"))
    args = ["grid", "--points", csv_path, "--realisations", int(realisations), "--seed", int(seed),
            "--out", out]
    if shard is not None:
        args += ["--shard", _shard(shard)]
    if threads:
        args += ["--threads", int(threads)]
    run(*args, *_options(options), verbose=verbose)
    if shard is not None:
        return None
    return load_grid(out)[1]


def merge_grid(out, verbose=False):
    """``crk grid --merge --out DIR``: checks that every part of a split run is there and
    consistent (raises CrkError otherwise); returns load_grid(out)."""
    run("grid", "--merge", "--out", os.fspath(out), verbose=verbose)
    return load_grid(out)


def _manifest_points(manifest):
    points = manifest.get("points") if isinstance(manifest, dict) else None
    if points is None and isinstance(manifest, dict):
        points = manifest.get("parameters")
    if not isinstance(points, list):
        return None
    rows = []
    for p in points:
        if isinstance(p, dict):
            if all(name in p for name in PARAMETER_NAMES):
                rows.append([float(p[name]) for name in PARAMETER_NAMES])
                continue
            for key in ("parameters", "params", "values", "point"):
                v = p.get(key)
                if isinstance(v, dict) and all(name in v for name in PARAMETER_NAMES):
                    rows.append([float(v[name]) for name in PARAMETER_NAMES])
                    break
                if isinstance(v, list) and len(v) == len(PARAMETER_NAMES):
                    rows.append([float(x) for x in v])
                    break
            else:
                return None
        elif isinstance(p, list) and len(p) == len(PARAMETER_NAMES):
            rows.append([float(x) for x in p])
        else:
            return None
    return np.array(rows, dtype=np.float64).reshape(-1, len(PARAMETER_NAMES))


def load_grid(out):
    """Reads a grid directory written by crk grid: (params [P][5] float64 in PARAMETER_NAMES
    order, psi GridPsi [P][N][19] float32 memory-mapped, manifest dict)."""
    out = os.fspath(out)
    path = os.path.join(out, "manifest.json")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise CrkError(f"{path}: no manifest (is {out!r} a crk grid directory?)") from None
    params = _manifest_points(manifest)
    if params is None and os.path.exists(os.path.join(out, "points.csv")):
        params = _read_points_csv(os.path.join(out, "points.csv"))
    if params is None:
        raise CrkError(f"{path}: cannot find the points' parameters in the manifest")
    return params, GridPsi(out, len(params)), manifest


# ---------------------------------------------------------------------------------------
# Train, evaluate, sample, fit
# ---------------------------------------------------------------------------------------


def _report_path(model):
    base, ext = os.path.splitext(model)
    for path in (base + ".json", model + ".json"):
        if os.path.exists(path):
            return path
    return None


def train(grid_dir, out, verbose=False, **options):
    """Trains a conditional MADE on a grid directory: ``crk train --grid DIR --out MODEL``.
    Options by keyword become flags (epochs=50 -> --epochs 50, hidden=[200, 200] ->
    --hidden 200,200, learning_rate, batch_size, components, seed, threads, checkpoint, ...:
    see ``crk train --help``). Returns the training report (the JSON crk writes beside the
    model) as a dict, with "model" (the model's path) and "stdout" added."""
    out = os.fspath(out)
    stdout = run("train", "--grid", os.fspath(grid_dir), "--out", out, *_options(options),
                 verbose=verbose)
    report = {}
    path = _report_path(out)
    if path is not None:
        with open(path) as f:
            report = json.load(f)
    if not isinstance(report, dict):
        report = {"report": report}
    report.setdefault("model", out)
    report.setdefault("stdout", stdout)
    return report


def evaluate(model, grid_dir, out, verbose=False, **options):
    """The paper's checks of a model against a grid directory of held-out simulations:
    ``crk evaluate --model M --grid DIR --out REPORT_DIR``. Returns REPORT_DIR/evaluation.json
    as a dict (the CSV and SVG figures are beside it)."""
    out = os.fspath(out)
    run("evaluate", "--model", os.fspath(model), "--grid", os.fspath(grid_dir), "--out", out,
        *_options(options), verbose=verbose)
    with open(os.path.join(out, "evaluation.json")) as f:
        return json.load(f)


def _made_sample_has_first_row():
    import inspect

    from .made import Made

    try:
        return "first_row" in inspect.signature(Made.sample).parameters
    except (TypeError, ValueError):
        return False


def sample(model, params, n, seed=0, first_row=0, threads=0, use_cli=False):
    """n spectra psi [n][19] float32 from a conditional model at parameters `params` (5
    values, PARAMETER_NAMES order). Row r is drawn from the stream (seed, first_row + r), so
    a sample split into calls with consecutive first_row equals one call.

    Runs in-process (Made.sample with first_row, the C ABI's crk_made_sample_from) where the
    library has it, else ``crk sample``; use_cli=True forces crk sample."""
    params = np.asarray(params, dtype=np.float64).ravel()
    n = int(n)
    if n <= 0:
        raise ValueError(f"n = {n}: give at least one row")
    if not use_cli and (first_row == 0 or _made_sample_has_first_row()):
        from .made import Made

        context = np.tile(params.astype(np.float32), (n, 1))
        with Made(model) as m:
            if first_row:
                return m.sample(n, context, seed=int(seed), first_row=int(first_row),
                                n_threads=int(threads))
            return m.sample(n, context, seed=int(seed), n_threads=int(threads))
    with tempfile.TemporaryDirectory(prefix="crk_sample_") as tmp:
        path = os.path.join(tmp, "sample.npy")
        args = ["sample", "--model", os.fspath(model), "--params", _value(params), "--n", n,
                "--seed", int(seed), "--out", path]
        if first_row:
            args += ["--first-row", int(first_row)]
        if threads:
            args += ["--threads", int(threads)]
        run(*args)
        return np.load(path)


def fit(model, energy_GeV, flux, sigma=None, out=None, verbose=False, **options):
    """Parameter inference for a measured spectrum: ``crk fit --model M --spectrum CSV --out
    FIT.json`` with the spectrum written to a temporary CSV (energy_GeV, flux [GeV^-1 m^-2
    s^-1 sr^-1], and flux_sigma, flux's uncertainty, where `sigma` is given: an array or one
    value for all energies). The energies must be the model's (GRID_ENERGIES_GEV for the
    grid's models). Options by keyword become flags (chains, warmup, draws, seed, threads;
    prior as "lo:hi,..." or as pairs [(lo, hi), ...]; see ``crk fit --help``). Returns the
    fit's JSON as a dict (maximum-likelihood parameters, posterior summaries); `out` keeps
    the file."""
    energy = np.asarray(energy_GeV, dtype=np.float64).ravel()
    flux = np.asarray(flux, dtype=np.float64).ravel()
    columns = [energy, flux]
    header = ["energy_GeV", "flux"]
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64)
        columns.append(np.full(energy.shape, float(sigma)) if sigma.ndim == 0 else sigma.ravel())
        header.append("flux_sigma")
    prior = options.get("prior")
    if prior is not None and not isinstance(prior, str):
        options["prior"] = ",".join(f"{float(lo)!r}:{float(hi)!r}" for lo, hi in prior)
    for name, c in zip(header[1:], columns[1:]):
        if c.shape != energy.shape:
            raise ValueError(f"{name}: {c.size} values for {energy.size} energies")
    with tempfile.TemporaryDirectory(prefix="crk_fit_") as tmp:
        spectrum = os.path.join(tmp, "spectrum.csv")
        with open(spectrum, "w") as f:
            f.write(",".join(header) + "\n")
            for row in zip(*columns):
                f.write(",".join(repr(float(v)) for v in row) + "\n")
        path = os.fspath(out) if out is not None else os.path.join(tmp, "fit.json")
        run("fit", "--model", os.fspath(model), "--spectrum", spectrum, "--out", path,
            *_options(options), verbose=verbose)
        with open(path) as f:
            return json.load(f)


def _crk_main():
    """The `crk` console script: runs the bundled crk binary with this command line."""
    try:
        path = crk_path()
    except CrkError as e:
        sys.stderr.write(f"crk: {e}\n")
        return 127
    if sys.platform == "win32":
        return subprocess.call([path] + sys.argv[1:])
    os.execv(path, [path] + sys.argv[1:])
