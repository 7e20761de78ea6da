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

/// Marks the lines [`print_digest`] writes.
const DIGEST: &str = "crkernels bits digest ";

/// Prints a digest of what a test computed (64-bit FNV-1a over the values' bits), labelled,
/// for [`bits_agree_under_every_isa`] to compare between processes.
#[allow(dead_code)] // the binaries that compare results across sets (made, network) use it
pub fn print_digest(label: &str, bits: impl IntoIterator<Item = u32>) {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut count = 0usize;
    for word in bits {
        for byte in word.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        count += 1;
    }
    println!("{DIGEST}{label}: {count} values, {hash:016x}");
}

/// Re-runs `test` (an exact name in this binary that calls [`print_digest`]) once per
/// available set, each in a child process with `CRKERNELS_ISA` set, and asserts that every
/// set prints the same digests: its results are bit-identical on every instruction set.
#[allow(dead_code)] // as print_digest
pub fn bits_agree_under_every_isa(test: &str) {
    if std::env::var_os(ISA_ENV_VAR).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut first: Option<(VectorIsa, Vec<String>)> = None;
    for isa in VectorIsa::available() {
        let output = library_support::program(&exe)
            .env(ISA_ENV_VAR, isa.name())
            .args(["--exact", "--nocapture", "--test-threads=1", test])
            .output()
            .expect("re-running the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{test} under {ISA_ENV_VAR}={}:\nstdout:\n{stdout}\nstderr:\n{}",
            isa.name(),
            String::from_utf8_lossy(&output.stderr)
        );
        // libtest may print "test name ... " on the line before the test's own output.
        let digests: Vec<String> =
            stdout.lines().filter_map(|l| l.find(DIGEST).map(|i| l[i..].to_string())).collect();
        assert!(!digests.is_empty(), "{test} printed no digest under {}", isa.name());
        match &first {
            Some((reference, expected)) => assert!(
                *expected == digests,
                "{test}: {ISA_ENV_VAR}={} gives other bits than {}:\n{}\nagainst\n{}",
                isa.name(),
                reference.name(),
                digests.join("\n"),
                expected.join("\n")
            ),
            None => first = Some((isa, digests)),
        }
        eprintln!("{ISA_ENV_VAR}={}: {test}'s digests as the first set's", isa.name());
    }
}
