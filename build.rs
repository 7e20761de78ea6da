//! Gives the cdylib the SONAME libcrkernels.so.0 on Linux, so that an installed
//! libcrkernels.so.0.1.0 (scripts/install.sh) is found through its libcrkernels.so.0 link.
//! Tells the tests the target they are built for, so that those that compile and run C
//! programs cross-compile and run them under an emulator in a cross build
//! (tests/library_support; scripts/test-aarch64.sh).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["TARGET", "HOST"] {
        println!("cargo:rustc-env=CRKERNELS_BUILD_{var}={}", std::env::var(var).unwrap_or_default());
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcrkernels.so.0");
    }
}
