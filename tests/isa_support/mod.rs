//! Runs a test binary's equivalence tests again under every instruction set the machine has.
//!
//! `CRKERNELS_ISA` is read once per process, so each set needs a process of its own: the
//! test re-executes its own binary with the variable set and the named tests selected
//! (`--exact`), and fails if any of them fails or does not run. Each child also runs
//! `the_selected_set_is_the_requested_one`, which every binary using this module defines with
//! [`assert_selected_set_is_requested`].

// Its `program` runs this binary again, under qemu in a cross build.
#[allow(dead_code)]
#[path = "../library_support/mod.rs"]
mod library_support;

use crkernels::math::simd::{ISA_ENV_VAR, VectorIsa};

/// Re-runs `tests` (exact names in this binary) once per available set, each in a child
/// process with `CRKERNELS_ISA` set.
pub fn rerun_under_every_isa(tests: &[&str]) {
    if std::env::var_os(ISA_ENV_VAR).is_some() {
        // Already a child (or a run pinned to one set by the user): no recursion.
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    for isa in VectorIsa::available() {
        let output = library_support::program(&exe)
            .env(ISA_ENV_VAR, isa.name())
            .arg("--exact")
            .arg("--test-threads=2")
            .arg("the_selected_set_is_the_requested_one")
            .args(tests)
            .output()
            .expect("re-running the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let expected = format!("{} passed", tests.len() + 1);
        assert!(
            output.status.success() && stdout.contains(&expected),
            "under {ISA_ENV_VAR}={}: expected `{expected}`\nstdout:\n{stdout}\nstderr:\n{}",
            isa.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("{ISA_ENV_VAR}={}: {} tests passed", isa.name(), tests.len());
    }
}

/// In a child of [`rerun_under_every_isa`], the kernels run the requested set.
pub fn assert_selected_set_is_requested() {
    if let Ok(name) = std::env::var(ISA_ENV_VAR) {
        let selected = VectorIsa::selected().expect("an available set");
        assert_eq!(selected.name(), name);
        assert_eq!(VectorIsa::detect(), selected);
    }
}
