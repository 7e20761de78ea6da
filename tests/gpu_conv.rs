//! GPU convolution and pooling (issue 7 (c)) against the CPU implementation
//! (crkernels::nn::conv, crkernels::nn::pool), the independent reference: max |gpu - cpu| <=
//! 1e-5 max |cpu| on fresh random inputs, every output element written (outputs are poisoned
//! with NaN first).
//!
//! Without a CUDA device (any machine without a driver, or a build without `cuda`) the
//! device tests return at once and the no-device tests check that every Rust and C entry
//! point answers NoDevice / CRK_ERR_NO_DEVICE with a message. On a GPU machine, build with
//! `cargo test --release --features cuda --test gpu_conv --no-run` and run the printed
//! binary from the repository root.

use std::ffi::CStr;

use crkernels::Error;
use crkernels::ffi::network::{
    crk_conv_params, crk_conv1d_f32_gpu, crk_conv2d_f32, crk_conv2d_f32_gpu, crk_conv2d_f32_gpu_device,
    crk_global_avgpool_f32_gpu, crk_maxpool2d_f32_gpu, crk_pool_params,
};
use crkernels::ffi::{
    CRK_ERR_INVALID_ARGUMENT, CRK_ERR_NO_DEVICE, CRK_ERR_NULL_POINTER, CRK_OK, crk_last_error_message,
    crk_status,
};
use crkernels::gpu::{self, conv as gpu_conv};
use crkernels::network::conv2d_parallel;
use crkernels::nn::conv::{Conv1d, Conv2d, ConvParams, causal_padding, same_padding};
use crkernels::nn::pool::{Pool2d, PoolKind, global_avgpool};
use crkernels::rng::Stream;

/// The device the GPU tests run on, if any.
fn test_device() -> Option<usize> {
    (gpu::device_count().expect("device_count") > 0).then_some(0)
}

/// n uniform values in [-1, 1) from stream `seed`.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Stream::new(seed, 7);
    (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32).collect()
}

/// Asserts every GPU value was written (finite) and max |gpu - cpu| <= 1e-5 max |cpu|.
fn assert_matches(what: &str, gpu: &[f32], cpu: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    if let Some(i) = gpu.iter().position(|v| !v.is_finite()) {
        panic!("{what}: output[{i}] = {} was not written (or is not finite; cpu {})", gpu[i], cpu[i]);
    }
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let (worst, error) = gpu
        .iter()
        .zip(cpu)
        .map(|(g, c)| (g - c).abs())
        .enumerate()
        .fold((0, 0.0f32), |best, (i, e)| if e > best.1 { (i, e) } else { best });
    assert!(
        error <= 1e-5 * scale,
        "{what}: max error {error:e} at [{worst}] (gpu {}, cpu {}) > 1e-5 x max-norm {scale}",
        gpu[worst],
        cpu[worst]
    );
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated thread-local string.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

fn expect_status(got: crk_status, want: crk_status, what: &str) {
    let message = last_error();
    assert_eq!(got, want, "{what}: status {got}, want {want} ({message})");
    // A failure explains itself; a success clears the message.
    assert_eq!(message.is_empty(), want == CRK_OK, "{what}: message {message:?}");
}

fn expect_no_device<T: std::fmt::Debug>(result: crkernels::Result<T>, what: &str) {
    match result {
        Err(Error::NoDevice(message)) => assert!(!message.is_empty(), "{what}: empty message"),
        other => panic!("{what}: expected NoDevice, got {other:?}"),
    }
}

/// Device arrays for the `_device` entry points, through cudarc on the device's primary
/// context (the one the library uses).
#[cfg(feature = "cuda")]
mod device_arrays {
    use cudarc::driver::{CudaContext, DevicePtr, DevicePtrMut};

    /// Uploads `input`, allocates `out_len` outputs poisoned with NaN, runs `body(input
    /// address, output address)` and returns the output.
    pub fn run(
        device: usize,
        input: &[f32],
        out_len: usize,
        body: impl FnOnce(u64, u64) -> crkernels::Result<()>,
    ) -> Vec<f32> {
        let context = CudaContext::new(device).expect("open the device");
        let stream = context.default_stream();
        let x = stream.clone_htod(input).expect("upload");
        let mut y = stream.clone_htod(&vec![f32::NAN; out_len]).expect("allocate");
        {
            let (x_address, _x) = x.device_ptr(&stream);
            let (y_address, _y) = y.device_ptr_mut(&stream);
            body(x_address, y_address).expect("device-array call");
        }
        stream.clone_dtoh(&y).expect("download")
    }
}

/// A conv2d case: c_in, [h, w], c_out, [kh, kw], params, batch.
type Case = (usize, [usize; 2], usize, [usize; 2], ConvParams, usize);

fn conv_cases() -> Vec<Case> {
    let p = ConvParams::default();
    let same = |h: usize, w: usize, kh: usize, kw: usize| {
        [same_padding(h, kh, 1, 1).unwrap(), same_padding(w, kw, 1, 1).unwrap()]
    };
    vec![
        // The seed conv2d at a small batch, and batch 1.
        (32, [8, 8], 64, [3, 3], ConvParams { padding: same(8, 8, 3, 3), ..p }, 5),
        (32, [8, 8], 64, [3, 3], ConvParams { padding: same(8, 8, 3, 3), ..p }, 1),
        // Channels not multiples of the tiles, odd sizes, no padding.
        (3, [7, 5], 65, [3, 2], p, 3),
        (5, [9, 11], 33, [2, 3], p, 2),
        (7, [6, 6], 100, [1, 1], p, 4),
        (1, [13, 3], 1, [4, 1], p, 3),
        // Strides, asymmetric padding, dilation.
        (4, [9, 10], 40, [3, 3], ConvParams { stride: [2, 3], padding: [[1, 0], [2, 1]], ..p }, 3),
        (6, [11, 12], 70, [3, 2], ConvParams { dilation: [2, 3], padding: [[2, 2], [0, 3]], ..p }, 2),
        (
            8,
            [10, 10],
            24,
            [3, 3],
            ConvParams { stride: [2, 2], dilation: [2, 2], padding: [[2, 2], [2, 2]], ..p },
            3,
        ),
        // Groups: 2, 3 and depthwise (groups = c_in, 1 and 2 outputs per group).
        (6, [5, 7], 12, [3, 3], ConvParams { groups: 2, padding: [[1, 1], [1, 1]], ..p }, 3),
        (9, [8, 6], 99, [2, 2], ConvParams { groups: 3, stride: [1, 2], ..p }, 2),
        (16, [8, 8], 16, [3, 3], ConvParams { groups: 16, padding: [[1, 1], [1, 1]], ..p }, 3),
        (5, [7, 7], 10, [5, 5], ConvParams { groups: 5, padding: [[2, 2], [2, 2]], ..p }, 2),
        // K much longer than the stage (BK = 8) and odd: 37 x 5 x 5.
        (37, [6, 9], 130, [5, 5], ConvParams { padding: [[2, 2], [2, 2]], ..p }, 2),
        // Height-1 layers (conv1d shapes): the seed conv1d, stride and dilation, causal.
        (2, [1, 256], 32, [1, 5], ConvParams { padding: [[0, 0], [2, 2]], ..p }, 3),
        (3, [1, 50], 20, [1, 4], ConvParams { stride: [1, 3], dilation: [1, 2], ..p }, 4),
        (
            4,
            [1, 33],
            8,
            [1, 3],
            ConvParams { padding: [[0, 0], causal_padding(3, 2).unwrap()], dilation: [1, 2], ..p },
            2,
        ),
    ]
}

fn layer_for(&(c_in, hw, c_out, khw, params, _): &Case, seed: u64) -> Conv2d {
    let k = c_in / params.groups * khw[0] * khw[1];
    let weight = random(c_out * k, seed);
    let bias = random(c_out, seed + 1);
    Conv2d::new(c_in, hw, c_out, khw, params, &weight, Some(&bias)).expect("layer")
}

#[test]
fn conv2d_matches_the_cpu_over_parameter_combinations() {
    let Some(device) = test_device() else { return };
    for (index, case) in conv_cases().iter().enumerate() {
        let layer = layer_for(case, 100 + 10 * index as u64);
        let n = case.5;
        let input = random(n * layer.input_size(), 200 + index as u64);
        let mut cpu = vec![0.0f32; n * layer.output_size()];
        layer.forward(&input, &mut cpu).unwrap();
        let what = format!("case {index} {case:?}");
        let mut host = vec![f32::NAN; cpu.len()];
        gpu_conv::conv2d(&layer, device, &input, &mut host).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_matches(&format!("{what}, host arrays"), &host, &cpu);
        #[cfg(feature = "cuda")]
        {
            let on_device = device_arrays::run(device, &input, cpu.len(), |x, y| {
                // SAFETY: x and y hold the batch's input and output on the device.
                unsafe { gpu_conv::conv2d_device(&layer, device, x, y, n) }
            });
            assert_matches(&format!("{what}, device arrays"), &on_device, &cpu);
        }
    }
}

#[test]
fn conv1d_matches_the_cpu() {
    let Some(device) = test_device() else { return };
    let cases = [
        (2, 256, 32, 5, (1, [2, 2], 1, 1), 4),
        (3, 41, 7, 3, (2, [1, 0], 3, 1), 3),
        (6, 30, 9, 4, (1, [3, 0], 1, 3), 2),
        (4, 17, 4, 5, (1, [2, 2], 1, 4), 1),
    ];
    for (index, (c_in, len, c_out, k, hyper, n)) in cases.into_iter().enumerate() {
        let weight = random(c_out * c_in / hyper.3 * k, 300 + index as u64);
        let bias = random(c_out, 400 + index as u64);
        let layer = Conv1d::new(c_in, len, c_out, k, hyper, &weight, Some(&bias)).unwrap();
        let input = random(n * c_in * len, 500 + index as u64);
        let mut cpu = vec![0.0f32; n * c_out * layer.output_len()];
        layer.forward(&input, &mut cpu).unwrap();
        let mut host = vec![f32::NAN; cpu.len()];
        gpu_conv::conv1d(&layer, device, &input, &mut host).unwrap();
        assert_matches(&format!("conv1d case {index}"), &host, &cpu);
        #[cfg(feature = "cuda")]
        {
            let on_device = device_arrays::run(device, &input, cpu.len(), |x, y| {
                // SAFETY: x and y hold the batch's input and output on the device.
                unsafe { gpu_conv::conv1d_device(&layer, device, x, y, n) }
            });
            assert_matches(&format!("conv1d case {index}, device arrays"), &on_device, &cpu);
        }
    }
}

/// The seed shapes at a batch of a few thousand events (the CPU reference on all cores).
#[test]
fn seed_shapes_match_the_cpu() {
    let Some(device) = test_device() else { return };
    let n = 3000;
    let conv2d_case: Case =
        (32, [8, 8], 64, [3, 3], ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() }, n);
    let conv1d_case: Case =
        (2, [1, 256], 32, [1, 5], ConvParams { padding: [[0, 0], [2, 2]], ..Default::default() }, n);
    for (name, case) in [("conv2d seed", conv2d_case), ("conv1d seed", conv1d_case)] {
        let layer = layer_for(&case, 11);
        let input = random(n * layer.input_size(), 12);
        let mut cpu = vec![0.0f32; n * layer.output_size()];
        conv2d_parallel(&layer, &input, &mut cpu, 0).unwrap();
        let mut host = vec![f32::NAN; cpu.len()];
        gpu_conv::conv2d(&layer, device, &input, &mut host).unwrap();
        assert_matches(name, &host, &cpu);
    }
}

/// A batch larger than one chunk (the chunk capped at 3 samples): same results as the CPU.
#[test]
fn batches_larger_than_a_chunk_stream_through() {
    let Some(device) = test_device() else { return };
    let case: Case =
        (5, [6, 7], 36, [3, 3], ConvParams { padding: [[1, 1], [1, 1]], ..Default::default() }, 11);
    let layer = layer_for(&case, 21);
    let n = case.5;
    let input = random(n * layer.input_size(), 22);
    let mut cpu = vec![0.0f32; n * layer.output_size()];
    layer.forward(&input, &mut cpu).unwrap();
    let pool = Pool2d::new(PoolKind::Max, 36, [6, 7], [2, 2], [2, 2], [[0, 0], [1, 0]]).unwrap();
    let mut pooled_cpu = vec![0.0f32; n * pool.output_size()];
    pool.forward(&cpu, &mut pooled_cpu).unwrap();

    gpu_conv::set_max_chunk_samples(3);
    let mut host = vec![f32::NAN; cpu.len()];
    let conv_result = gpu_conv::conv2d(&layer, device, &input, &mut host);
    let mut pooled = vec![f32::NAN; pooled_cpu.len()];
    let pool_result = gpu_conv::pool2d(&pool, device, &cpu, &mut pooled);
    gpu_conv::set_max_chunk_samples(0);
    conv_result.unwrap();
    pool_result.unwrap();
    assert_matches("chunked conv2d", &host, &cpu);
    assert_matches("chunked max pooling", &pooled, &pooled_cpu);
}

/// Several host threads on one device at once: calls are serialised on the device's lock and
/// each gets its own, correct result.
#[test]
fn host_threads_share_a_device() {
    let Some(device) = test_device() else { return };
    let cases = conv_cases();
    std::thread::scope(|scope| {
        for (index, case) in cases.iter().enumerate().take(6) {
            scope.spawn(move || {
                let layer = layer_for(case, 800 + index as u64);
                let n = 2 * case.5 + 1;
                let input = random(n * layer.input_size(), 900 + index as u64);
                let mut cpu = vec![0.0f32; n * layer.output_size()];
                layer.forward(&input, &mut cpu).unwrap();
                for round in 0..3 {
                    let mut host = vec![f32::NAN; cpu.len()];
                    gpu_conv::conv2d(&layer, device, &input, &mut host).unwrap();
                    assert_matches(&format!("thread {index} round {round}"), &host, &cpu);
                }
            });
        }
    });
}

#[test]
fn pooling_matches_the_cpu() {
    let Some(device) = test_device() else { return };
    let average = |count_include_pad| PoolKind::Average { count_include_pad };
    // kind, channels, [h, w], kernel, stride, padding, batch.
    let cases = [
        (PoolKind::Max, 3, [8, 8], [2, 2], [2, 2], [[0, 0], [0, 0]], 4),
        (PoolKind::Max, 5, [9, 7], [3, 3], [2, 2], [[1, 1], [1, 0]], 3),
        (average(true), 5, [9, 7], [3, 3], [2, 2], [[1, 1], [1, 0]], 3),
        (average(false), 5, [9, 7], [3, 3], [2, 2], [[1, 1], [1, 0]], 3),
        (average(false), 2, [11, 13], [4, 2], [3, 1], [[2, 1], [0, 1]], 2),
        (PoolKind::Max, 4, [1, 50], [1, 3], [1, 2], [[0, 0], [1, 1]], 5),
        (average(true), 4, [1, 50], [1, 4], [1, 4], [[0, 0], [0, 0]], 1),
    ];
    for (index, (kind, c, hw, kernel, stride, padding, n)) in cases.into_iter().enumerate() {
        let layer = Pool2d::new(kind, c, hw, kernel, stride, padding).unwrap();
        let input = random(n * layer.input_size(), 600 + index as u64);
        let mut cpu = vec![0.0f32; n * layer.output_size()];
        layer.forward(&input, &mut cpu).unwrap();
        let mut host = vec![f32::NAN; cpu.len()];
        gpu_conv::pool2d(&layer, device, &input, &mut host).unwrap();
        assert_matches(&format!("pool case {index}"), &host, &cpu);
        #[cfg(feature = "cuda")]
        {
            let on_device = device_arrays::run(device, &input, cpu.len(), |x, y| {
                // SAFETY: x and y hold the batch's input and output on the device.
                unsafe { gpu_conv::pool2d_device(&layer, device, x, y, n) }
            });
            assert_matches(&format!("pool case {index}, device arrays"), &on_device, &cpu);
        }
    }
    for (planes, plane) in [(1, 1), (7, 64), (130, 33), (3, 1000)] {
        let input = random(planes * plane, 700 + plane as u64);
        let mut cpu = vec![0.0f32; planes];
        global_avgpool(&input, plane, &mut cpu).unwrap();
        let mut host = vec![f32::NAN; planes];
        gpu_conv::global_avgpool(device, &input, plane, &mut host).unwrap();
        assert_matches(&format!("global average pool {planes} x {plane}"), &host, &cpu);
        #[cfg(feature = "cuda")]
        {
            let on_device = device_arrays::run(device, &input, planes, |x, y| {
                // SAFETY: x and y hold planes x plane and planes values on the device.
                unsafe { gpu_conv::global_avgpool_device(device, x, plane, y, planes) }
            });
            assert_matches("global average pool, device arrays", &on_device, &cpu);
        }
    }
}

/// The C entry points on a device against the CPU's C entry point.
#[test]
fn c_gpu_entry_points_match_the_cpu() {
    let Some(device) = test_device() else { return };
    let device = device as i32;
    let (n, c_in, h, w, c_out, k) = (6, 4, 7, 9, 10, 3);
    let params = crk_conv_params { stride: [1, 2], padding: [1, 1], dilation: [1, 1], groups: 2 };
    let weight = random(c_out * c_in / 2 * k * k, 31);
    let bias = random(c_out, 32);
    let input = random(n * c_in * h * w, 33);
    let out_len = n * c_out * 7 * 5;
    let mut cpu = vec![0.0f32; out_len];
    let mut host = vec![f32::NAN; out_len];
    // SAFETY (both): arrays of the documented sizes.
    let status = unsafe {
        crk_conv2d_f32(
            input.as_ptr(),
            n,
            c_in,
            h,
            w,
            weight.as_ptr(),
            bias.as_ptr(),
            c_out,
            k,
            k,
            &params,
            cpu.as_mut_ptr(),
        )
    };
    expect_status(status, CRK_OK, "CPU conv2d");
    let status = unsafe {
        crk_conv2d_f32_gpu(
            device,
            input.as_ptr(),
            n,
            c_in,
            h,
            w,
            weight.as_ptr(),
            bias.as_ptr(),
            c_out,
            k,
            k,
            &params,
            host.as_mut_ptr(),
        )
    };
    assert_eq!(status, CRK_OK, "crk_conv2d_f32_gpu: {}", last_error());
    assert_matches("crk_conv2d_f32_gpu", &host, &cpu);
    #[cfg(feature = "cuda")]
    {
        let on_device = device_arrays::run(device as usize, &input, out_len, |x, y| {
            // SAFETY: device arrays of the documented sizes; host weights.
            let status = unsafe {
                crk_conv2d_f32_gpu_device(
                    device,
                    x as usize as *const f32,
                    n,
                    c_in,
                    h,
                    w,
                    weight.as_ptr(),
                    bias.as_ptr(),
                    c_out,
                    k,
                    k,
                    &params,
                    y as usize as *mut f32,
                )
            };
            assert_eq!(status, CRK_OK, "crk_conv2d_f32_gpu_device: {}", last_error());
            Ok(())
        });
        assert_matches("crk_conv2d_f32_gpu_device", &on_device, &cpu);
    }
}

/// Device ordinal `device_count()` never exists: every Rust and C entry point says NoDevice
/// (on any machine). Where there is no device at all, ordinal 0 says so too.
#[test]
fn a_missing_device_is_no_device_with_a_message() {
    let count = gpu::device_count().expect("device_count");
    let layer = layer_for(&(2, [4, 4], 3, [3, 3], ConvParams::default(), 1), 41);
    let conv1d = Conv1d::new(1, 8, 2, 3, (1, [1, 1], 1, 1), &random(6, 42), None).unwrap();
    let pool = Pool2d::new(PoolKind::Max, 2, [4, 4], [2, 2], [2, 2], [[0, 0], [0, 0]]).unwrap();
    let input = random(2 * 16, 43);
    let mut missing = vec![count];
    if count == 0 {
        missing.push(0);
    }
    for device in missing {
        let mut out = vec![0.0f32; 12];
        expect_no_device(gpu_conv::conv2d(&layer, device, &input, &mut out), "conv2d");
        let mut out1 = vec![0.0f32; 2 * 8];
        expect_no_device(gpu_conv::conv1d(&conv1d, device, &random(8, 44), &mut out1), "conv1d");
        let mut pooled = vec![0.0f32; 8];
        expect_no_device(gpu_conv::pool2d(&pool, device, &input, &mut pooled), "pool2d");
        let mut means = vec![0.0f32; 2];
        expect_no_device(gpu_conv::global_avgpool(device, &input, 16, &mut means), "global_avgpool");
        expect_no_device(gpu_conv::fp32_fma_peak(device), "fp32_fma_peak");
        // Device addresses are never touched when there is no device.
        let (x, y) = (0x1000u64, 0x100000u64);
        // SAFETY (all): the calls fail before any device access.
        unsafe {
            expect_no_device(gpu_conv::conv2d_device(&layer, device, x, y, 1), "conv2d_device");
            expect_no_device(gpu_conv::conv1d_device(&conv1d, device, x, y, 1), "conv1d_device");
            expect_no_device(gpu_conv::pool2d_device(&pool, device, x, y, 1), "pool2d_device");
            expect_no_device(gpu_conv::global_avgpool_device(device, x, 16, y, 2), "global_avgpool_device");
        }

        let c_device = device as i32;
        let params = crk_conv_params { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
        let weight = random(3 * 2 * 9, 45);
        let mut out = vec![0.0f32; 3 * 16];
        // SAFETY (all C calls): arrays of the documented sizes.
        let status = unsafe {
            crk_conv2d_f32_gpu(
                c_device,
                input.as_ptr(),
                1,
                2,
                4,
                4,
                weight.as_ptr(),
                std::ptr::null(),
                3,
                3,
                3,
                &params,
                out.as_mut_ptr(),
            )
        };
        expect_status(status, CRK_ERR_NO_DEVICE, "crk_conv2d_f32_gpu");
        let status = unsafe {
            crk_conv1d_f32_gpu(
                c_device,
                input.as_ptr(),
                1,
                2,
                16,
                weight.as_ptr(),
                std::ptr::null(),
                3,
                3,
                &params,
                out.as_mut_ptr(),
            )
        };
        expect_status(status, CRK_ERR_NO_DEVICE, "crk_conv1d_f32_gpu");
        let pool_params =
            crk_pool_params { kernel: [2, 2], stride: [2, 2], padding: [0, 0], count_include_pad: 0 };
        let status = unsafe {
            crk_maxpool2d_f32_gpu(c_device, input.as_ptr(), 1, 2, 4, 4, &pool_params, out.as_mut_ptr())
        };
        expect_status(status, CRK_ERR_NO_DEVICE, "crk_maxpool2d_f32_gpu");
        let status =
            unsafe { crk_global_avgpool_f32_gpu(c_device, input.as_ptr(), 1, 2, 16, out.as_mut_ptr()) };
        expect_status(status, CRK_ERR_NO_DEVICE, "crk_global_avgpool_f32_gpu");
    }
    // A negative ordinal from C.
    let params = crk_conv_params { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
    let weight = random(2, 46);
    let mut out = vec![0.0f32; 16];
    // SAFETY: arrays of the documented sizes.
    let status = unsafe {
        crk_conv2d_f32_gpu(
            -1,
            input.as_ptr(),
            1,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            1,
            1,
            1,
            &params,
            out.as_mut_ptr(),
        )
    };
    expect_status(status, CRK_ERR_NO_DEVICE, "device -1");
    assert!(last_error().contains("negative"), "{}", last_error());
}

/// Bad arguments are reported before any device is needed (so on every machine).
#[test]
fn bad_arguments_are_rejected_with_a_message() {
    let layer = layer_for(&(2, [4, 4], 3, [3, 3], ConvParams::default(), 1), 51);
    let input = random(2 * 16 + 1, 52);
    let mut out = vec![0.0f32; 12];
    let error = gpu_conv::conv2d(&layer, 0, &input, &mut out).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    // SAFETY (all): the calls fail on their arguments before any device access.
    unsafe {
        let error = gpu_conv::conv2d_device(&layer, 0, 0, 0x1000, 1).unwrap_err();
        assert!(matches!(error, Error::NullPointer(_)), "{error:?}");
        let error = gpu_conv::conv2d_device(&layer, 0, 0x1002, 0x100000, 1).unwrap_err();
        assert!(error.message().contains("aligned"), "{error:?}");
        let error = gpu_conv::conv2d_device(&layer, 0, 0x1000, 0x1010, 1).unwrap_err();
        assert!(error.message().contains("overlap"), "{error:?}");
    }
    let error = gpu_conv::global_avgpool(0, &input, 0, &mut out).unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");

    let params = crk_conv_params { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    let weight = random(3 * 2 * 9, 53);
    let mut y = vec![0.0f32; 3 * 16];
    // SAFETY (all): arrays of the documented sizes, or NULL.
    unsafe {
        let status = crk_conv2d_f32_gpu(
            0,
            input.as_ptr(),
            0,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            3,
            3,
            3,
            &params,
            y.as_mut_ptr(),
        );
        expect_status(status, CRK_ERR_INVALID_ARGUMENT, "n = 0");
        let status = crk_conv2d_f32_gpu(
            0,
            std::ptr::null(),
            1,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            3,
            3,
            3,
            &params,
            y.as_mut_ptr(),
        );
        expect_status(status, CRK_ERR_NULL_POINTER, "NULL input");
        let status = crk_conv2d_f32_gpu_device(
            0,
            std::ptr::null(),
            1,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            3,
            3,
            3,
            &params,
            0x1000 as *mut f32,
        );
        expect_status(status, CRK_ERR_NULL_POINTER, "NULL device input");
        let status = crk_conv2d_f32_gpu(
            0,
            input.as_ptr(),
            1,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            3,
            3,
            3,
            std::ptr::null(),
            y.as_mut_ptr(),
        );
        expect_status(status, CRK_ERR_NULL_POINTER, "NULL params");
        let mut nan = input.clone();
        nan[5] = f32::NAN;
        let status = crk_conv2d_f32_gpu(
            0,
            nan.as_ptr(),
            1,
            2,
            4,
            4,
            weight.as_ptr(),
            std::ptr::null(),
            3,
            3,
            3,
            &params,
            y.as_mut_ptr(),
        );
        expect_status(status, CRK_ERR_INVALID_ARGUMENT, "NaN input");
    }
}
