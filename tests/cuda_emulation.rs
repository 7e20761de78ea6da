//! Runs the convolution and pooling kernels of kernels/conv.cu on the CPU (so on machines
//! without a GPU): tests/cuda_emulation/conv_kernels.cpp compiles the CUDA source as C++20
//! with a shim (one std::thread per CUDA thread, a barrier for __syncthreads), prepares
//! weights, patch table and grid as src/gpu/conv.rs does, and compares with naive loops from
//! the definitions. This checks the kernels' indexing (tiles, strides, padding, dilation,
//! groups, ragged edges), not the GPU's memory model or speed: tests/gpu_conv.rs does that
//! on a device. Needs a C++20 compiler ($CXX, default c++): skipped with a notice without
//! one, or fails under CRKERNELS_REQUIRE_ALL=1 (tests/tool_support).

mod tool_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use tool_support::tool_available;

#[test]
fn conv_kernels_agree_with_the_definitions_on_the_cpu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cuda_emulation_conv_kernels");
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    if !tool_available(&compiler, "conv_kernels_agree_with_the_definitions_on_the_cpu") {
        return;
    }
    let build = Command::new(&compiler)
        .args(["-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas", "-I"])
        .arg(root.join("kernels"))
        .arg("-I")
        .arg(root.join("tests/cuda_emulation"))
        .arg(root.join("tests/cuda_emulation/conv_kernels.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(build.status.success(), "{compiler} failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let run = Command::new(&exe).output().expect("run the emulated kernels");
    assert!(
        run.status.success(),
        "emulated kernels disagree with the definitions:\n{}",
        String::from_utf8_lossy(&run.stdout)
    );
}
