//! Optional external tools (cmake, pkg-config, gfortran, a C++ compiler with OpenMP, nm,
//! readelf): one rule for every test that needs one.
//!
//! A tool is available when `<tool> --version` runs and succeeds (callers pass `$CC`, `$CXX`
//! or `$FC` where they honour those). When it is missing, the test (or the part of it that
//! needs the tool) is skipped: one line
//! `skipping <test>: <tool> not found (set CRKERNELS_REQUIRE_ALL=1 to make this an error)`
//! and the test passes. With `CRKERNELS_REQUIRE_ALL=1` (as .ci/run sets) a missing tool is
//! an error instead: the test panics, naming the tool and how to install it.
//!
//! The skip line is written straight to the process's stderr, not through `eprintln!` (which
//! libtest captures and shows only for failing tests), so that plain `cargo test` shows it,
//! as does `cargo test -- --nocapture`.

use std::io::Write;
use std::process::Command;

/// Whether `tool` runs (`tool --version` succeeds); if not, skips `test` with a notice, or
/// panics under CRKERNELS_REQUIRE_ALL=1.
pub fn tool_available(tool: &str, test: &str) -> bool {
    let runs = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    requirement_met(runs, &format!("{tool} not found"), install_hint(tool), test)
}

/// The rule for any check of an optional tool: true when `met`; otherwise writes
/// `skipping <test>: <why> (...)` and returns false, or panics under CRKERNELS_REQUIRE_ALL=1
/// with `install` (what to install, on Debian/Ubuntu).
pub fn requirement_met(met: bool, why: &str, install: &str, test: &str) -> bool {
    if met {
        return true;
    }
    let required = std::env::var("CRKERNELS_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "cannot run {test}: {why}, and CRKERNELS_REQUIRE_ALL is set. Install it (Debian/Ubuntu: \
         sudo apt-get install -y {install}), or unset CRKERNELS_REQUIRE_ALL to skip it instead"
    );
    let line = format!("skipping {test}: {why} (set CRKERNELS_REQUIRE_ALL=1 to make this an error)\n");
    // One write, so that the line is not split by the test harness's own output.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

/// The Debian/Ubuntu packages that provide `tool`.
fn install_hint(tool: &str) -> &'static str {
    let name = std::path::Path::new(tool).file_name().and_then(|n| n.to_str()).unwrap_or(tool);
    if name.contains("fortran") {
        "gfortran"
    } else if name.contains("++") {
        "g++"
    } else if name.starts_with("mpi") {
        "openmpi-bin libopenmpi-dev"
    } else {
        match name {
            "cmake" => "cmake",
            "pkg-config" | "pkgconf" => "pkg-config",
            "nm" | "readelf" => "binutils",
            "valgrind" => "valgrind",
            _ => "the package that provides it",
        }
    }
}
