//! `CRKERNELS_ISA` and `crk_vector_isa()`: each case runs this binary again in a child process
//! with the variable set (it is read once per process), and the child checks what a C caller
//! sees.

use std::ffi::CStr;
use std::process::Command;

use crkernels::ffi::losses::{crk_losses, crk_losses_free, crk_losses_new_thomson};
use crkernels::ffi::{CRK_ERR_INVALID_ARGUMENT, CRK_OK, crk_last_error_message, crk_vector_isa};
use crkernels::math::simd::{ISA_ENV_VAR, VectorIsa};

/// What a child expects, passed through this variable: "ok" or "error".
const EXPECT_VAR: &str = "CRKERNELS_ISA_TEST_EXPECT";

fn vector_isa() -> String {
    // SAFETY: crk_vector_isa returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(crk_vector_isa()) }.to_str().unwrap().to_string()
}

fn last_error() -> String {
    // SAFETY: never NULL, valid until the next call on this thread.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

/// Runs the child test under `CRKERNELS_ISA=value` expecting `expect`.
fn run_child(value: &str, expect: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(ISA_ENV_VAR, value)
        .env(EXPECT_VAR, expect)
        .args(["--exact", "child_checks_what_a_c_caller_sees", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{ISA_ENV_VAR}={value:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child: with a usable set, crk_vector_isa names it and calls succeed; with an unusable
/// one, a call fails with CRK_ERR_INVALID_ARGUMENT and a message that names the value and the
/// sets available.
#[test]
fn child_checks_what_a_c_caller_sees() {
    let (Ok(value), Ok(expect)) = (std::env::var(ISA_ENV_VAR), std::env::var(EXPECT_VAR)) else {
        return; // not a child
    };
    let mut losses: *mut crk_losses = std::ptr::null_mut();
    // SAFETY: `losses` is writable.
    let status = unsafe { crk_losses_new_thomson(1e-16, &mut losses) };
    if expect == "ok" {
        assert_eq!(status, CRK_OK, "{}", last_error());
        assert_eq!(vector_isa(), value);
        // SAFETY: made above.
        unsafe { crk_losses_free(losses) };
    } else {
        assert_eq!(status, CRK_ERR_INVALID_ARGUMENT);
        assert!(losses.is_null());
        let message = last_error();
        assert!(message.contains(&format!("{value:?}")), "{message}");
        assert!(message.contains(&VectorIsa::available_names()), "{message}");
        // The kernels reached past the checks run the baseline path.
        assert_eq!(vector_isa(), "baseline");
    }
}

#[test]
fn every_available_set_can_be_chosen() {
    for isa in VectorIsa::available() {
        run_child(isa.name(), "ok");
    }
}

#[test]
fn an_unknown_or_unavailable_set_is_an_error_not_a_crash() {
    if !cfg!(feature = "std") {
        // The no_std core reads no environment: it runs its baseline loops whatever the
        // variable says (`cargo test --no-default-features`).
        return;
    }
    for value in ["avx1024", "AVX2", "sse"] {
        run_child(value, "error");
    }
    for isa in VectorIsa::ALL {
        if !VectorIsa::available().any(|a| a == isa) {
            run_child(isa.name(), "error");
        }
    }
}

/// Without the variable, the set in use is the widest the CPU has.
#[test]
fn the_default_is_the_widest_set() {
    if std::env::var_os(ISA_ENV_VAR).is_none() {
        assert_eq!(vector_isa(), VectorIsa::hardware().name());
        assert_eq!(VectorIsa::available().last(), Some(VectorIsa::hardware()));
    }
}

/// Names round-trip, and only exact lower-case names are sets.
#[test]
fn names_round_trip() {
    for isa in VectorIsa::ALL {
        assert_eq!(VectorIsa::from_name(isa.name()), Some(isa));
    }
    assert_eq!(VectorIsa::from_name("Avx2"), None);
    let names: Vec<&str> = VectorIsa::ALL.iter().map(|isa| isa.name()).collect();
    assert_eq!(names, ["baseline", "neon", "avx2", "avx512"]);
}
