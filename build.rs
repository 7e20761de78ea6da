//! Gives the cdylib the SONAME libcrkernels.so.0 on Linux, so that an installed
//! libcrkernels.so.0.1.0 (scripts/install.sh) is found through its libcrkernels.so.0 link.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcrkernels.so.0");
    }
}
