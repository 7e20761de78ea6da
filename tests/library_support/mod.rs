//! The repository root and a freshly built release library, for the tests that compile and
//! link programs against it (tests/c_abi.rs) or list its symbols (tests/bindings_audit.rs).

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
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--lib", "--package", "crkernels", "--target-dir"])
                .arg(&target)
                .current_dir(root())
                .status()
                .expect("run cargo build for the library");
            assert!(status.success(), "cargo build of the library failed");
            let dir = target.join("release");
            assert!(dir.join("libcrkernels.a").exists(), "no libcrkernels.a in {}", dir.display());
            dir
        })
        .clone()
}
