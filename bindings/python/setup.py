"""Builds libcrkernels (the repository's root crate, a cdylib) and the `crk` tool (the
workspace crate in cli/) with setuptools-rust and bundles them in the package:

    crkernels/libcrkernels.so   (crkernels.dylib / crkernels.dll elsewhere)
    crkernels/bin/crk

The Rust sources are two directories up (../../Cargo.toml), so the package builds from a
source checkout only: pip >= 21.3 builds a local directory in place, as it needs.

Environment:
    CARGO_TARGET_DIR     cargo's target directory (default: the checkout's target/); crk is
                         built there, the library in its subdirectory python-cdylib/ (below).
    CRKERNELS_BUILD_CRK  "auto" (default): build crk when cli/ is there, and leave it out with a
                         warning if its build fails; "1": a failing crk build fails the install;
                         "0": do not build crk.
"""

import os
import shutil
import sys

from setuptools import setup
from setuptools_rust import Binding, RustExtension, Strip, build_rust

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
LIB_MANIFEST = os.path.join(ROOT, "Cargo.toml")
CLI_MANIFEST = os.path.join(ROOT, "cli", "Cargo.toml")

if not os.path.exists(LIB_MANIFEST):
    sys.exit(
        f"crkernels: no Rust sources at {LIB_MANIFEST}. The package builds from a source "
        "checkout of crkernels (pip install ./bindings/python, pip >= 21.3, which builds in "
        "place); or install a wheel built elsewhere (pip wheel ./bindings/python)."
    )

LIB_NAME = {"darwin": "libcrkernels.dylib", "win32": "crkernels.dll"}.get(
    sys.platform, "libcrkernels.so"
)
# strip -S: the release profile keeps line tables (debug = 1) for profiling; the bundled
# copies do not need them (15 MB -> a few MB). setuptools-rust runs `strip`: only where it is.
STRIP = Strip.Debug if shutil.which("strip") else Strip.No


class build_rust_plain_names(build_rust):
    """The cdylib keeps its own name (libcrkernels.so): it is loaded with ctypes, not imported,
    so it needs no Python extension suffix (.cpython-311-x86_64-linux-gnu.so)."""

    def get_dylib_ext_path(self, ext, target_fname):
        path = super().get_dylib_ext_path(ext, target_fname)
        if ext.binding == Binding.NoBinding:
            path = os.path.join(os.path.dirname(path), LIB_NAME)
        return path


class bdist_wheel_any_python(bdist_wheel):
    """py3-none-<platform>: the package is pure Python (ctypes) around a library that does not
    link to Python, so one wheel serves every Python 3 of the platform."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


# setuptools-rust builds the cdylib with `cargo rustc --crate-type cdylib`: a build of the
# crkernels crate that differs from `cargo build --release` (rlib + cdylib + staticlib) and from
# crkernels as crk's dependency (rlib), so in one target directory each would recompile the
# crate over the others every time. The library gets a target directory of its own, below the
# shared one (its dependency, crkernels-core, is built there once).
TARGET_DIR = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))

rust_extensions = [
    RustExtension(
        "crkernels.libcrkernels",
        path=LIB_MANIFEST,
        args=["--target-dir", os.path.join(TARGET_DIR, "python-cdylib")],
        binding=Binding.NoBinding,
        strip=STRIP,
        py_limited_api=False,
    )
]

build_crk = os.environ.get("CRKERNELS_BUILD_CRK", "auto").strip().lower()
if build_crk not in ("0", "no", "false") and os.path.exists(CLI_MANIFEST):
    rust_extensions.append(
        RustExtension(
            {"crk": "crkernels.bin.crk"},
            path=CLI_MANIFEST,
            binding=Binding.Exec,
            strip=STRIP,
            # A checkout whose crk does not build still gives a working library package.
            optional=build_crk not in ("1", "yes", "true"),
        )
    )

setup(
    rust_extensions=rust_extensions,
    cmdclass={"build_rust": build_rust_plain_names, "bdist_wheel": bdist_wheel_any_python},
    zip_safe=False,
)
