//! The repository root and a freshly built release library, for the tests that compile and
//! link programs against it (tests/c_abi.rs) or list its symbols (tests/bindings_audit.rs).
//!
//! In a cross build (`cargo test --target aarch64-unknown-linux-gnu`, the tests running under
//! qemu-user; scripts/test-aarch64.sh) the library is built for that target, C, C++ and
//! Fortran programs are compiled with the target's cross compilers and run under the emulator.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding a fresh libcrkernels.a and shared library.
///
/// `cargo test` builds only the rlib, so a library under target/ may be stale: build it here
/// with the cargo that runs the tests, into a target directory of its own (no lock contention
/// with the outer cargo), once per test binary.
pub fn library_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("staticlib");
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--release", "--lib", "--package", "crkernels", "--target-dir"])
                .arg(&target);
            if let Some(triple) = cross_target() {
                cargo.args(["--target", triple]);
            }
            let status = cargo.current_dir(root()).status().expect("run cargo build for the library");
            assert!(status.success(), "cargo build of the library failed");
            let dir = match cross_target() {
                Some(triple) => target.join(triple).join("release"),
                None => target.join("release"),
            };
            assert!(dir.join("libcrkernels.a").exists(), "no libcrkernels.a in {}", dir.display());
            dir
        })
        .clone()
}

/// The target triple when the tests were built for another target than the host's (a cross
/// build run under an emulator), else None.
#[allow(dead_code)]
pub fn cross_target() -> Option<&'static str> {
    match (option_env!("CRKERNELS_BUILD_TARGET"), option_env!("CRKERNELS_BUILD_HOST")) {
        (Some(target), Some(host)) if target != host => Some(target),
        _ => None,
    }
}

/// The compiler named by `$var` (`CC`, `CXX`, `FC`), else `native`; in a cross build
/// `$<var>_<target>` (as the cc crate reads it, e.g. `CC_aarch64_unknown_linux_gnu`), else
/// Debian's cross compiler `<arch>-linux-gnu-<cross>` (`gcc`, `g++`, `gfortran`).
#[allow(dead_code)]
pub fn compiler(var: &str, native: &str, cross: &str) -> String {
    match cross_target() {
        None => std::env::var(var).unwrap_or_else(|_| native.to_string()),
        Some(triple) => std::env::var(format!("{var}_{}", triple.replace('-', "_"))).unwrap_or_else(|_| {
            let arch = triple.split('-').next().unwrap_or(triple);
            format!("{arch}-linux-gnu-{cross}")
        }),
    }
}

/// A command that runs the compiled program `exe`: directly, or in a cross build under
/// `$CRKERNELS_TEST_RUNNER` (words split at spaces), else `qemu-<arch> -L /usr/<arch>-linux-gnu`
/// (Debian's qemu-user and cross libc).
#[allow(dead_code)]
pub fn program(exe: &Path) -> Command {
    let Some(triple) = cross_target() else { return Command::new(exe) };
    let arch = triple.split('-').next().unwrap_or(triple);
    let runner = std::env::var("CRKERNELS_TEST_RUNNER")
        .unwrap_or_else(|_| format!("qemu-{arch} -L /usr/{arch}-linux-gnu"));
    let mut words = runner.split_whitespace();
    let mut command = Command::new(words.next().expect("an empty CRKERNELS_TEST_RUNNER"));
    command.args(words).arg(exe);
    command
}
