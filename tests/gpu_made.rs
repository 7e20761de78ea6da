//! The MADE emulator on the GPU (issue 7 (b)) against the CPU implementation, the reference:
//! log-densities and samples with the same seed must agree to 1e-5
//! (max |gpu - cpu| / max(1, |cpu|)), on every model in tests/data/made, fresh inputs, batches
//! of several chunks and the device-pointer entry points. Without a device (no `cuda` feature,
//! driver or GPU) every entry point must say so with CRK_ERR_NO_DEVICE and a message, after
//! the argument checks.
//!
//! On a GPU machine without a Rust toolchain, run the prebuilt binary from the repository root:
//! `target/release/deps/gpu_made-<hash> --test-threads=1 --nocapture`.

mod made_support;

use std::collections::HashMap;

use crkernels::Error;
use crkernels::emulator::load_made;
use crkernels::ffi::made::{crk_made, crk_made_load, crk_made_log_prob_gpu, crk_made_log_prob_gpu_device};
use crkernels::ffi::made::{crk_made_free, crk_made_sample_gpu, crk_made_sample_gpu_device};
use crkernels::ffi::{
    CRK_ERR_INVALID_ARGUMENT, CRK_ERR_NO_DEVICE, CRK_ERR_NULL_POINTER, crk_last_error_message,
};
use crkernels::gpu::device_count;
use crkernels::gpu::made::GpuMade;
use crkernels::nn::{Activation, LoadOptions, Made};
use made_support::cases;

const SECRET: &str = "secret_shape";

fn options_for(meta: &HashMap<String, String>) -> LoadOptions {
    LoadOptions {
        activation: meta.get("activation").and_then(|a| Activation::from_name(a)),
        epsilon: meta.get("epsilon").and_then(|e| e.parse().ok()),
        sbi_dummy_input: meta.get("sbi_dummy_input").map(|s| s == "true"),
    }
}

/// Every reference model (name, model).
fn models() -> Vec<(String, Made)> {
    let models: Vec<(String, Made)> = cases()
        .into_iter()
        .map(|(name, path, _, meta)| {
            let made = load_made(&path, &options_for(&meta)).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, made)
        })
        .collect();
    assert!(
        models.len() >= 10 && models.iter().any(|(n, _)| n == SECRET),
        "models missing: {}",
        models.len()
    );
    models
}

fn secret_model() -> Made {
    models().into_iter().find(|(n, _)| n == SECRET).map(|(_, m)| m).expect("the SECRET-shape model")
}

/// A deterministic pseudo-random value in [-1, 1) (independent of the library's generator).
fn noise(i: usize, salt: u64) -> f32 {
    let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z ^= z >> 31;
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 29;
    ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// Fresh inputs for n rows: contexts in [-2, 2), x drawn by the CPU model and perturbed.
fn inputs(made: &Made, n: usize, salt: u64) -> (Vec<f32>, Vec<f32>) {
    let context: Vec<f32> = (0..n * made.n_context()).map(|i| 2.0 * noise(i, salt)).collect();
    let mut x = vec![0.0f32; n * made.n_dims()];
    made.sample(&context, salt, 0, &mut x).unwrap();
    for (i, v) in x.iter_mut().enumerate() {
        *v += 0.1 * noise(i, salt + 1);
    }
    (context, x)
}

/// max |a - b| / max(1, |b|).
fn worst_scaled_error(gpu: &[f32], cpu: &[f32]) -> f64 {
    assert_eq!(gpu.len(), cpu.len());
    gpu.iter()
        .zip(cpu)
        .map(|(&g, &c)| (f64::from(g) - f64::from(c)).abs() / f64::from(c).abs().max(1.0))
        .fold(0.0, f64::max)
}

fn last_message() -> String {
    // SAFETY: never NULL; valid until the next call on this thread.
    unsafe { std::ffi::CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

fn has_device() -> bool {
    device_count().unwrap_or(0) > 0
}

#[test]
fn bad_arguments_are_rejected_before_the_device() {
    let gpu = GpuMade::new(secret_model());
    let (c, d) = (gpu.n_context(), gpu.n_dims());
    let (context, mut x) = inputs(&gpu, 4, 3);
    let mut out = vec![7.0f32; 4];
    let err = gpu.log_prob(0, &context, &x, &mut []).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("n = 0"), "{err}");
    let err = gpu.log_prob(0, &context[..c], &x, &mut out).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("context"), "{err}");
    x[2 * d + 3] = f32::NAN;
    let err = gpu.log_prob(0, &context, &x, &mut out).unwrap_err();
    assert!(err.to_string().contains("x[2][3]"), "{err}");
    assert!(out.iter().all(|&v| v == 7.0), "output written on bad input");
    let err = gpu.sample(0, &context, 1, 0, &mut vec![0.0; 4 * d + 1]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = gpu.sample_given(0, &context, &[gpu.order()[1]], 1, 0, &mut vec![0.0; 4 * d]).unwrap_err();
    assert!(err.to_string().contains("autoregressive order"), "{err}");
    // SAFETY: zero addresses and n = 0 are rejected before anything is dereferenced.
    unsafe {
        let err = gpu.log_prob_device(0, 64, 0, 4, 128).unwrap_err();
        assert!(matches!(err, Error::NullPointer(_)) && err.to_string().contains('x'), "{err}");
        let err = gpu.sample_device(0, 64, 0, 1, 0, 128).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    // The C ABI: a NULL handle, n = 0, NULL arrays, a negative or missing device.
    // SAFETY: valid or NULL pointers with the sizes given.
    unsafe {
        let status =
            crk_made_log_prob_gpu(std::ptr::null(), 0, context.as_ptr(), x.as_ptr(), 4, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NULL_POINTER, "{}", last_message());
        let status = crk_made_sample_gpu(std::ptr::null(), 0, context.as_ptr(), 0, 1, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NULL_POINTER);
        let mut handle: *mut crk_made = std::ptr::null_mut();
        let path = std::ffi::CString::new(
            made_support::data_dir().join("secret_shape.safetensors").to_str().unwrap(),
        )
        .unwrap();
        assert_eq!(crk_made_load(path.as_ptr(), &mut handle), 0, "{}", last_message());
        let status = crk_made_log_prob_gpu(handle, 0, context.as_ptr(), x.as_ptr(), 0, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_INVALID_ARGUMENT);
        assert!(last_message().contains("n = 0"), "{}", last_message());
        let status = crk_made_log_prob_gpu(handle, 0, context.as_ptr(), x.as_ptr(), 4, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_INVALID_ARGUMENT, "NaN in x: {}", last_message());
        let status = crk_made_sample_gpu(handle, 0, context.as_ptr(), 4, 1, std::ptr::null_mut());
        assert_eq!(status, CRK_ERR_NULL_POINTER);
        let status =
            crk_made_log_prob_gpu_device(handle, 0, context.as_ptr(), std::ptr::null(), 4, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NULL_POINTER);
        let good = inputs(&gpu, 4, 3).1;
        for device in [-1, 1 << 20] {
            let status =
                crk_made_log_prob_gpu(handle, device, context.as_ptr(), good.as_ptr(), 4, out.as_mut_ptr());
            assert_eq!(status, CRK_ERR_NO_DEVICE, "device {device}");
            assert!(!last_message().is_empty());
        }
        crk_made_free(handle);
    }
}

#[test]
fn without_a_device_every_entry_point_says_so() {
    if has_device() {
        eprintln!("a CUDA device is present: the no-device path is not exercised here");
        return;
    }
    let gpu = GpuMade::new(secret_model());
    let (context, mut x) = inputs(&gpu, 8, 5);
    let mut out = vec![7.0f32; 8];
    let expect_no_device = |result: crkernels::Result<()>, what: &str| match result {
        Err(Error::NoDevice(message)) => assert!(!message.is_empty(), "{what}: empty message"),
        other => panic!("{what}: {other:?}"),
    };
    expect_no_device(gpu.log_prob(0, &context, &x, &mut out), "log_prob");
    assert!(out.iter().all(|&v| v == 7.0), "output written without a device");
    expect_no_device(gpu.sample(0, &context, 1, 0, &mut x), "sample");
    expect_no_device(gpu.sample_given(0, &context, &[gpu.order()[0]], 1, 0, &mut x), "sample_given");
    // SAFETY: without a device the addresses are never used.
    unsafe {
        expect_no_device(gpu.log_prob_device(0, 64, 128, 8, 256), "log_prob_device");
        expect_no_device(gpu.sample_device(0, 64, 8, 1, 0, 256), "sample_device");
    }
    // SAFETY: valid pointers with the sizes given.
    unsafe {
        let mut handle: *mut crk_made = std::ptr::null_mut();
        let path = std::ffi::CString::new(
            made_support::data_dir().join("secret_shape.safetensors").to_str().unwrap(),
        )
        .unwrap();
        assert_eq!(crk_made_load(path.as_ptr(), &mut handle), 0, "{}", last_message());
        let status = crk_made_log_prob_gpu(handle, 0, context.as_ptr(), x.as_ptr(), 8, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NO_DEVICE);
        assert!(!last_message().is_empty());
        let status = crk_made_sample_gpu(handle, 0, context.as_ptr(), 8, 1, x.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NO_DEVICE);
        let status =
            crk_made_log_prob_gpu_device(handle, 0, context.as_ptr(), x.as_ptr(), 8, out.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NO_DEVICE);
        let status = crk_made_sample_gpu_device(handle, 0, context.as_ptr(), 8, 1, x.as_mut_ptr());
        assert_eq!(status, CRK_ERR_NO_DEVICE);
        assert!(!last_message().is_empty());
        crk_made_free(handle);
    }
}

/// Serialises the tests that change the chunk size.
static CHUNK_KNOB: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn log_densities_match_the_cpu() {
    if !has_device() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let _knob = CHUNK_KNOB.lock().unwrap_or_else(|p| p.into_inner());
    for (salt, (name, made)) in models().into_iter().enumerate() {
        let n = if name == SECRET { 20_000 } else { 3_000 };
        let (context, x) = inputs(&made, n, 100 + salt as u64);
        let mut cpu = vec![0.0f32; n];
        made.log_prob(&context, &x, &mut cpu).unwrap();
        let gpu = GpuMade::new(made);
        let mut ours = vec![0.0f32; n];
        gpu.log_prob(0, &context, &x, &mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        let worst = worst_scaled_error(&ours, &cpu);
        eprintln!("{name}: log_prob of {n} rows, worst scaled error {worst:.2e}");
        assert!(worst <= 1e-5, "{name}: worst scaled error {worst:.2e}");
        // Several chunks (1000 rows and a remainder): the same numbers.
        crkernels::gpu::made::set_max_chunk_rows(1000);
        let mut chunked = vec![0.0f32; n];
        let result = gpu.log_prob(0, &context, &x, &mut chunked);
        crkernels::gpu::made::set_max_chunk_rows(0);
        result.unwrap();
        assert_eq!(chunked, ours, "{name}: the chunk size changed the result");
    }
}

#[test]
fn samples_match_the_cpu_for_the_same_seed() {
    if !has_device() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let _knob = CHUNK_KNOB.lock().unwrap_or_else(|p| p.into_inner());
    for (salt, (name, made)) in models().into_iter().enumerate() {
        let n = if name == SECRET { 20_000 } else { 2_000 };
        let (context, _) = inputs(&made, n, 200 + salt as u64);
        let (seed, first_sample) = (2024 + salt as u64, 17);
        let mut cpu = vec![0.0f32; n * made.n_dims()];
        made.sample(&context, seed, first_sample, &mut cpu).unwrap();
        let gpu = GpuMade::new(made);
        let mut ours = vec![0.0f32; cpu.len()];
        gpu.sample(0, &context, seed, first_sample, &mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        let worst = worst_scaled_error(&ours, &cpu);
        eprintln!("{name}: {n} samples, worst scaled error {worst:.2e}");
        assert!(worst <= 1e-5, "{name}: worst scaled error {worst:.2e}");
        crkernels::gpu::made::set_max_chunk_rows(777);
        let mut chunked = vec![0.0f32; cpu.len()];
        let result = gpu.sample(0, &context, seed, first_sample, &mut chunked);
        crkernels::gpu::made::set_max_chunk_rows(0);
        result.unwrap();
        assert_eq!(chunked, ours, "{name}: the chunk size changed the samples");
    }
}

#[test]
fn conditional_samples_match_the_cpu() {
    if !has_device() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    for (salt, (name, made)) in models().into_iter().enumerate() {
        if made.n_dims() < 2 {
            continue;
        }
        let n = 1_000;
        let (context, x) = inputs(&made, n, 300 + salt as u64);
        let given: Vec<usize> = made.order()[..made.n_dims() / 2].to_vec();
        let mut cpu = x.clone();
        made.sample_given(&context, &given, 9, 0, &mut cpu).unwrap();
        let gpu = GpuMade::new(made);
        let mut ours = x;
        gpu.sample_given(0, &context, &given, 9, 0, &mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        let worst = worst_scaled_error(&ours, &cpu);
        eprintln!("{name}: {n} conditional samples ({} given), worst scaled error {worst:.2e}", given.len());
        assert!(worst <= 1e-5, "{name}: worst scaled error {worst:.2e}");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn device_pointer_entry_points_match_the_cpu() {
    use cudarc::driver::{CudaContext, DevicePtr};
    if !has_device() {
        eprintln!("no CUDA device: skipped");
        return;
    }
    let made = secret_model();
    let n = 5_000;
    let (context, x) = inputs(&made, n, 400);
    let mut cpu_log_prob = vec![0.0f32; n];
    made.log_prob(&context, &x, &mut cpu_log_prob).unwrap();
    let mut cpu_samples = vec![0.0f32; n * made.n_dims()];
    made.sample(&context, 31, 0, &mut cpu_samples).unwrap();
    let gpu = GpuMade::new(made);
    let device = CudaContext::new(0).unwrap();
    let stream = device.default_stream();
    let context_on_device = stream.clone_htod(&context).unwrap();
    let x_on_device = stream.clone_htod(&x).unwrap();
    let log_prob_on_device = stream.alloc_zeros::<f32>(n).unwrap();
    let samples_on_device = stream.alloc_zeros::<f32>(cpu_samples.len()).unwrap();
    let address = |slice: &cudarc::driver::CudaSlice<f32>| slice.device_ptr(&stream).0;
    let (c, xs, lp, out) = (
        address(&context_on_device),
        address(&x_on_device),
        address(&log_prob_on_device),
        address(&samples_on_device),
    );
    stream.synchronize().unwrap();
    // SAFETY: the addresses hold n rows each on device 0.
    unsafe {
        gpu.log_prob_device(0, c, xs, n, lp).unwrap();
        gpu.sample_device(0, c, n, 31, 0, out).unwrap();
    }
    let log_prob = stream.clone_dtoh(&log_prob_on_device).unwrap();
    let samples = stream.clone_dtoh(&samples_on_device).unwrap();
    let (lp_error, sample_error) =
        (worst_scaled_error(&log_prob, &cpu_log_prob), worst_scaled_error(&samples, &cpu_samples));
    eprintln!("device pointers: log_prob error {lp_error:.2e}, samples error {sample_error:.2e}");
    assert!(lp_error <= 1e-5 && sample_error <= 1e-5);
    // The C ABI on the same device arrays, and a NaN found on the device.
    let mut handle: *mut crk_made = std::ptr::null_mut();
    let path =
        std::ffi::CString::new(made_support::data_dir().join("secret_shape.safetensors").to_str().unwrap())
            .unwrap();
    // SAFETY: the device pointers hold n rows each; the host arrays are valid.
    unsafe {
        assert_eq!(crk_made_load(path.as_ptr(), &mut handle), 0);
        let status =
            crk_made_log_prob_gpu_device(handle, 0, c as *const f32, xs as *const f32, n, lp as *mut f32);
        assert_eq!(status, 0, "{}", last_message());
        let status = crk_made_sample_gpu_device(handle, 0, c as *const f32, n, 31, out as *mut f32);
        assert_eq!(status, 0, "{}", last_message());
        let mut bad = x.clone();
        bad[7 * gpu.n_dims() + 4] = f32::INFINITY;
        let bad_on_device = stream.clone_htod(&bad).unwrap();
        let status = crk_made_log_prob_gpu_device(
            handle,
            0,
            c as *const f32,
            address(&bad_on_device) as *const f32,
            n,
            lp as *mut f32,
        );
        assert_eq!(status, CRK_ERR_INVALID_ARGUMENT);
        assert!(last_message().contains("x[7][4]"), "{}", last_message());
        crk_made_free(handle);
    }
    assert_eq!(stream.clone_dtoh(&samples_on_device).unwrap(), samples, "C ABI samples differ");
}
