//! Issue 15 (4): the C ABI's and the core's `unsafe` code on small inputs, sized to run under
//! Miri (`cargo +nightly miri test --test miri_ffi`, see scripts/nightly-checks.sh) in minutes.
//! It also runs as an ordinary test (milliseconds).
//!
//! Covered: the FFI helpers (slices from raw parts, NULL and misaligned pointers, n = 0 with
//! NULL, in-place and partly overlapping arrays, out-pointers, handles made by Box::into_raw
//! and freed, the thread-local error message and its pointer), the worker pool (a job whose
//! lifetime is erased, shared by 2 threads; Miri checks the data races too), the batch
//! splits on 2 threads, and through them the core's unchecked hot loops on the portable path:
//! the GEMM tile (`read_unaligned` panels, the corner store), im2col's `copy_run`, the
//! unchecked pooling loop, the dense layers, the MADE, the network, the Philox generator
//! (mixture sampling), the Cholesky of the surrogate fit.
//!
//! Miri reports no CPU feature that the build does not enable, so a plain run takes the
//! portable paths; scripts/nightly-checks.sh runs this file again built with
//! `-C target-feature=+avx2,+fma` and with `+avx512f,+avx512dq` added, which runs the AVX2 and
//! AVX-512 kernels (the `#[target_feature]` copies of the loops and the explicit intrinsics of
//! the GEMM tiles, the row-segment conv tile, the dense rows, the MADE's mixture lanes);
//! `vector_instruction_set` checks which set a build dispatches to.
//!
//! Not covered under Miri: the transport and ensemble entry points (their tables take minutes
//! to build there; that test runs natively only), with the source sampling's AVX-512 gathers.
//! Models come from `include_bytes!` (Miri's isolation forbids opening files).

use std::ffi::{CStr, c_void};
use std::ptr::{null, null_mut};

use crkernels::ffi::ensemble::{
    CRK_SPATIAL_UNIFORM_DISC, crk_ensemble_free, crk_ensemble_new, crk_ensemble_params, crk_ensemble_run,
    crk_ensemble_sources, crk_flux_from_sources, crk_source_spectrum,
};
use crkernels::ffi::losses::{
    CRK_LOSS_KN_EXACT, CRK_LOSS_THOMSON, crk_losses_free, crk_losses_new, crk_losses_new_thomson,
    crk_losses_rate, crk_photon_field,
};
use crkernels::ffi::made::{
    crk_made_dims, crk_made_free, crk_made_load_buffer, crk_made_log_prob, crk_made_log_prob_grad,
    crk_made_order, crk_made_sample, crk_made_sample_given, crk_mixture_log_pdf, crk_mixture_quantile,
    crk_mixture_sample,
};
use crkernels::ffi::network::{
    CRK_ACTIVATION_ELU, crk_activation_f32, crk_avgpool2d_f32, crk_conv_params, crk_conv1d_f32_threads,
    crk_conv1d_output_length, crk_conv2d_f32, crk_conv2d_f32_threads, crk_conv2d_output_shape, crk_dense_f32,
    crk_global_avgpool_f32, crk_maxpool1d_f32, crk_maxpool2d_f32, crk_network_free, crk_network_input_count,
    crk_network_input_shape, crk_network_load_buffer, crk_network_output_size, crk_network_run,
    crk_pool_params, crk_pool2d_output_shape, crk_softmax_f32,
};
use crkernels::ffi::surrogate::{
    CRK_WEIGHTS_CUSTOM, crk_surrogate_coefficients, crk_surrogate_fit, crk_surrogate_free,
    crk_surrogate_gradient, crk_surrogate_options, crk_surrogate_predict, crk_surrogate_propose_step,
    crk_surrogate_step,
};
use crkernels::ffi::transport::{
    crk_transport_free, crk_transport_initial_energy, crk_transport_loss_length2, crk_transport_new,
};
use crkernels::ffi::{
    CRK_ERR_FORMAT, CRK_ERR_INVALID_ARGUMENT, CRK_ERR_NULL_POINTER, CRK_OK, crk_last_error_message,
    crk_status, crk_version,
};
use crkernels::math::simd::VectorIsa;

const MADE: &[u8] = include_bytes!("data/made/plain_h1_tanh_k3_std_samples.safetensors");
const MADE_NFLOWS: &[u8] = include_bytes!("data/made/nflows_sbi_ctx_bn_1blk_k1.safetensors");
const NETWORK: &[u8] = include_bytes!("data/conv/net_small_mixed.safetensors");

fn message() -> String {
    // SAFETY: never NULL; valid until the next call on this thread.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

#[track_caller]
fn ok(status: crk_status) {
    assert_eq!(status, CRK_OK, "{}", message());
}

#[track_caller]
fn fails(status: crk_status, want: crk_status, text: &str) {
    assert_eq!(status, want, "{}", message());
    assert!(message().contains(text), "{:?} does not contain {text:?}", message());
}

fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7 + salt * 13) % 23) as f32 - 11.0) / 8.0).collect()
}

/// The vector code this build runs: under Miri only what the build enables at compile time
/// (`-C target-feature`), as Miri reports no other CPU features; natively what the CPU has.
#[test]
fn vector_instruction_set() {
    let isa = VectorIsa::detect();
    eprintln!("vector instruction set: {isa:?}");
    if cfg!(all(target_feature = "avx512f", target_feature = "avx512dq", target_feature = "fma")) {
        assert_eq!(isa, VectorIsa::Avx512);
    } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        assert!(isa >= VectorIsa::Avx2);
    } else if cfg!(miri) {
        assert_eq!(isa, VectorIsa::Baseline);
    }
}

#[test]
fn pointers_lengths_and_messages() {
    // SAFETY: every pointer below is NULL (rejected), or valid for the length passed.
    unsafe {
        assert!(!CStr::from_ptr(crk_version()).to_bytes().is_empty());
        let mut losses = null_mut();
        ok(crk_losses_new_thomson(1.5e-16, &mut losses));
        // In place, and with an output that overlaps the input by part (copied first).
        let mut buffer = [1.0, 2.0, 4.0, 8.0, 16.0];
        // One raw pointer for both arrays, as a C caller has (`buffer.as_ptr()` then
        // `buffer.as_mut_ptr()` would invalidate the first under Stacked Borrows).
        let p = buffer.as_mut_ptr();
        ok(crk_losses_rate(losses, p, 4, p.add(1)));
        assert_eq!(buffer[0], 1.0);
        for (got, want) in buffer[1..].iter().zip([1.5e-16, 6e-16, 2.4e-15, 9.6e-15]) {
            assert!((got / want - 1.0).abs() < 1e-15, "{got} vs {want}");
        }
        let mut same = [3.0, 5.0];
        let p = same.as_mut_ptr();
        ok(crk_losses_rate(losses, p, 2, p));
        for (got, want) in same.iter().zip([1.5e-16 * 9.0, 1.5e-16 * 25.0]) {
            assert!((got / want - 1.0).abs() < 1e-15, "{got} vs {want}");
        }
        // n = 0: NULL arrays allowed.
        ok(crk_losses_rate(losses, null(), 0, null_mut()));
        assert_eq!(message(), "");
        // NULL and misaligned arrays are refused before any read.
        fails(crk_losses_rate(losses, null(), 2, p), CRK_ERR_NULL_POINTER, "energy_GeV");
        fails(crk_losses_rate(null(), p, 2, p), CRK_ERR_NULL_POINTER, "losses");
        let bytes = [0u8; 64];
        let misaligned = bytes.as_ptr().add(1) as *const f64;
        fails(crk_losses_rate(losses, misaligned, 2, p), CRK_ERR_INVALID_ARGUMENT, "aligned");
        fails(crk_losses_rate(losses, p, usize::MAX / 4, p), CRK_ERR_INVALID_ARGUMENT, "large");
        let bad = [1.0, -1.0];
        let mut out = [0.5; 2];
        fails(
            crk_losses_rate(losses, bad.as_ptr(), 2, out.as_mut_ptr()),
            CRK_ERR_INVALID_ARGUMENT,
            "element 1",
        );
        assert_eq!(out, [0.5; 2], "written on failure");
        // The message pointer stays valid until the next call.
        let kept = crk_last_error_message();
        assert!(CStr::from_ptr(kept).to_bytes().starts_with(b"invalid argument"));
        ok(crk_losses_rate(losses, same.as_ptr(), 2, out.as_mut_ptr()));
        assert_eq!(message(), "");
        // Handles: NULL out-pointers refused; free(NULL) is a no-op.
        fails(crk_losses_new_thomson(1.0, null_mut()), CRK_ERR_NULL_POINTER, "out");
        crk_losses_free(losses);
        crk_losses_free(null_mut());
        // A photon field array read through a raw pointer.
        let fields = [
            crk_photon_field { temperature_K: 2.7255, energy_density_eV_per_cm3: 0.26 },
            crk_photon_field { temperature_K: 5000.0, energy_density_eV_per_cm3: 0.3 },
        ];
        ok(crk_losses_new(CRK_LOSS_THOMSON, fields.as_ptr(), 2, 3.0, &mut losses));
        crk_losses_free(losses);
        fails(crk_losses_new(CRK_LOSS_THOMSON, null(), 2, 3.0, &mut losses), CRK_ERR_NULL_POINTER, "fields");
        assert!(losses.is_null(), "out not cleared on failure");
    }
}

/// The thread-local message under Miri's data-race detector: two threads fail and succeed
/// at once, each sees only its own message.
#[test]
fn messages_are_per_thread() {
    std::thread::scope(|scope| {
        for t in 0..2usize {
            scope.spawn(move || {
                let mut q = 0.0;
                for round in 0..3 {
                    // SAFETY: q writable.
                    let s = unsafe { crk_surrogate_gradient(null(), null(), null_mut()) };
                    assert_eq!(s, CRK_ERR_NULL_POINTER);
                    assert!(message().contains("surrogate"), "thread {t} round {round}: {}", message());
                    // SAFETY: q writable.
                    ok(unsafe { crkernels::ffi::stats::crk_gamma_q(1.0 + t as f64, 0.5, &mut q) });
                    assert_eq!(message(), "");
                }
            });
        }
    });
}

#[test]
fn conv_pool_dense_kernels() {
    // SAFETY: arrays of the sizes the calls are given.
    unsafe {
        let (n, c_in, h, w, c_out, k) = (2, 3, 5, 6, 5, 3);
        let params = crk_conv_params { stride: [1, 2], padding: [1, 1], dilation: [1, 1], groups: 1 };
        let (mut h_out, mut w_out) = (0, 0);
        ok(crk_conv2d_output_shape(h, w, k, k, &params, &mut h_out, &mut w_out));
        let input = values(n * c_in * h * w, 1);
        let weight = values(c_out * c_in * k * k, 2);
        let bias = values(c_out, 3);
        // c_out 5 >= 4: im2col + the GEMM tile (a partial tile: 5 of 8 columns).
        let mut one = vec![0.0f32; n * c_out * h_out * w_out];
        ok(crk_conv2d_f32(
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
            one.as_mut_ptr(),
        ));
        // The batch split on 2 threads (the worker pool): the same bits.
        let mut two = vec![0.0f32; one.len()];
        ok(crk_conv2d_f32_threads(
            input.as_ptr(),
            n,
            c_in,
            h,
            w,
            weight.as_ptr(),
            null(),
            c_out,
            k,
            k,
            &params,
            2,
            two.as_mut_ptr(),
        ));
        let mut with_bias = two.clone();
        for (i, v) in with_bias.iter_mut().enumerate() {
            *v += bias[(i / (h_out * w_out)) % c_out];
        }
        for (a, b) in one.iter().zip(&with_bias) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
        }
        // Stride 1 and an output 8 wide: the row-segment tile on AVX-512 builds (im2col on the
        // others); checked against the same layer on 2 threads.
        let same = crk_conv_params { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
        let (h8, w8) = (3, 8);
        let x8 = values(n * c_in * h8 * w8, 11);
        let mut seg = vec![0.0f32; n * c_out * h8 * w8];
        let mut seg2 = vec![0.0f32; seg.len()];
        ok(crk_conv2d_f32(
            x8.as_ptr(),
            n,
            c_in,
            h8,
            w8,
            weight.as_ptr(),
            bias.as_ptr(),
            c_out,
            k,
            k,
            &same,
            seg.as_mut_ptr(),
        ));
        ok(crk_conv2d_f32_threads(
            x8.as_ptr(),
            n,
            c_in,
            h8,
            w8,
            weight.as_ptr(),
            bias.as_ptr(),
            c_out,
            k,
            k,
            &same,
            2,
            seg2.as_mut_ptr(),
        ));
        assert_eq!(seg, seg2);
        // Depthwise (direct path) and a 1-D conv of stride 1 (implicit GEMM).
        let depthwise = crk_conv_params { stride: [1, 1], padding: [0, 1], dilation: [1, 2], groups: 3 };
        let dw_weight = values(3 * k * k, 4);
        ok(crk_conv2d_output_shape(h, w, k, k, &depthwise, &mut h_out, &mut w_out));
        let mut dw = vec![0.0f32; n * 3 * h_out * w_out];
        ok(crk_conv2d_f32(
            input.as_ptr(),
            n,
            c_in,
            h,
            w,
            dw_weight.as_ptr(),
            null(),
            3,
            k,
            k,
            &depthwise,
            dw.as_mut_ptr(),
        ));
        let one_d = crk_conv_params { stride: [1, 1], padding: [0, 2], dilation: [1, 1], groups: 1 };
        let len = 11;
        let x1 = values(n * c_in * len, 5);
        let w1 = values(9 * c_in * 4, 6);
        let mut out_len = 0;
        ok(crk_conv1d_output_length(len, 4, &one_d, &mut out_len));
        assert_eq!(out_len, 12);
        let mut y1 = vec![0.0f32; n * 9 * out_len];
        ok(crk_conv1d_f32_threads(
            x1.as_ptr(),
            n,
            c_in,
            len,
            w1.as_ptr(),
            null(),
            9,
            4,
            &one_d,
            2,
            y1.as_mut_ptr(),
        ));
        assert!(y1.iter().all(|v| v.is_finite()));
        fails(
            crk_conv2d_f32(
                input.as_ptr(),
                n,
                c_in,
                h,
                w,
                null(),
                null(),
                c_out,
                k,
                k,
                &params,
                one.as_mut_ptr(),
            ),
            CRK_ERR_NULL_POINTER,
            "weight",
        );

        // Pools: the unchecked window loop, padded windows.
        let pool = crk_pool_params { kernel: [2, 3], stride: [2, 2], padding: [1, 1], count_include_pad: 0 };
        ok(crk_pool2d_output_shape(h, w, &pool, &mut h_out, &mut w_out));
        let mut max = vec![0.0f32; n * c_in * h_out * w_out];
        let mut avg = vec![0.0f32; max.len()];
        ok(crk_maxpool2d_f32(input.as_ptr(), n, c_in, h, w, &pool, max.as_mut_ptr()));
        ok(crk_avgpool2d_f32(input.as_ptr(), n, c_in, h, w, &pool, avg.as_mut_ptr()));
        assert!(max.iter().zip(&avg).all(|(m, a)| m >= a));
        // Index 1 of the window: (10 + 2 - 3) / 2 + 1 = 5 outputs per row.
        let mut max1 = vec![0.0f32; n * c_in * 5];
        ok(crk_maxpool1d_f32(input.as_ptr(), n, c_in, 10, &pool, max1.as_mut_ptr()));
        let mut global = vec![0.0f32; n * c_in];
        ok(crk_global_avgpool_f32(input.as_ptr(), n, c_in, h * w, global.as_mut_ptr()));

        // Dense, activation and softmax (in place).
        let (n_in, n_out) = (7, 5);
        let x = values(3 * n_in, 7);
        let wd = values(n_out * n_in, 8);
        let mut y = vec![0.0f32; 3 * n_out];
        ok(crk_dense_f32(x.as_ptr(), 3, n_in, wd.as_ptr(), bias.as_ptr(), n_out, y.as_mut_ptr()));
        let p = y.as_mut_ptr();
        ok(crk_activation_f32(CRK_ACTIVATION_ELU, 0.5, p, y.len(), p));
        ok(crk_softmax_f32(p, 3, n_out, p));
        for row in y.chunks(n_out) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn made_handles() {
    // SAFETY: arrays of the sizes the calls are given; handles freed once.
    unsafe {
        for bytes in [MADE, MADE_NFLOWS] {
            let mut made = null_mut();
            ok(crk_made_load_buffer(bytes.as_ptr(), bytes.len(), &mut made));
            let (mut c, mut d, mut k) = (0, 0, 0);
            ok(crk_made_dims(made, &mut c, &mut d, &mut k));
            let mut order = vec![0usize; d];
            ok(crk_made_order(made, order.as_mut_ptr()));
            let n = 3;
            let context: Vec<f32> = values(n * c, 9);
            let mut x = vec![0.0f32; n * d];
            ok(crk_made_sample(made, context.as_ptr(), n, 5, 1, x.as_mut_ptr()));
            let mut again = vec![0.0f32; n * d];
            ok(crk_made_sample(made, context.as_ptr(), n, 5, 2, again.as_mut_ptr()));
            assert_eq!(x, again, "samples depend on the thread count");
            let (mut lp1, mut lp2) = (vec![0.0f32; n], vec![0.0f32; n]);
            ok(crk_made_log_prob(made, context.as_ptr(), x.as_ptr(), n, 1, lp1.as_mut_ptr()));
            ok(crk_made_log_prob(made, context.as_ptr(), x.as_ptr(), n, 2, lp2.as_mut_ptr()));
            assert_eq!(lp1, lp2);
            // The gradient's tile kernel (its AVX2 + FMA build where enabled), in place of
            // nothing: all three outputs, then only d x.
            let (mut lp3, mut gc, mut gx) = (vec![0.0f32; n], vec![0.0f32; n * c], vec![0.0f32; n * d]);
            ok(crk_made_log_prob_grad(
                made,
                context.as_ptr(),
                x.as_ptr(),
                n,
                2,
                lp3.as_mut_ptr(),
                gc.as_mut_ptr(),
                gx.as_mut_ptr(),
            ));
            assert_eq!(lp1, lp3);
            let mut gx_only = vec![0.0f32; n * d];
            ok(crk_made_log_prob_grad(
                made,
                context.as_ptr(),
                x.as_ptr(),
                n,
                1,
                null_mut(),
                null_mut(),
                gx_only.as_mut_ptr(),
            ));
            assert_eq!(gx, gx_only);
            if d > 1 {
                let given = [order[0]];
                ok(crk_made_sample_given(
                    made,
                    context.as_ptr(),
                    given.as_ptr(),
                    1,
                    n,
                    6,
                    1,
                    again.as_mut_ptr(),
                ));
            }
            x[d] = f32::NAN;
            fails(
                crk_made_log_prob(made, context.as_ptr(), x.as_ptr(), n, 1, lp1.as_mut_ptr()),
                CRK_ERR_INVALID_ARGUMENT,
                "x[1][0]",
            );
            crk_made_free(made);
        }
        let mut made = null_mut();
        fails(crk_made_load_buffer(MADE.as_ptr(), MADE.len() / 2, &mut made), CRK_ERR_FORMAT, "");
        assert!(made.is_null());
        fails(crk_made_load_buffer(null(), 10, &mut made), CRK_ERR_NULL_POINTER, "");
        // The mixture kernels (Philox draws, quantile search).
        let (logits, means, scales) = ([0.1, -0.3], [0.0, 1.5], [-0.2, 0.1]);
        let mut out = [0.0; 4];
        ok(crk_mixture_sample(
            logits.as_ptr(),
            means.as_ptr(),
            scales.as_ptr(),
            2,
            9,
            0,
            4,
            out.as_mut_ptr(),
        ));
        let inout = out.as_mut_ptr();
        ok(crk_mixture_log_pdf(logits.as_ptr(), means.as_ptr(), scales.as_ptr(), 2, inout, 4, inout));
        let p = [0.1, 0.5, 0.9, 0.99];
        ok(crk_mixture_quantile(
            logits.as_ptr(),
            means.as_ptr(),
            scales.as_ptr(),
            2,
            p.as_ptr(),
            4,
            out.as_mut_ptr(),
        ));
        assert!(out.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn network_handle() {
    // SAFETY: arrays of the sizes the calls are given; the handle freed once.
    unsafe {
        let mut net = null_mut();
        ok(crk_network_load_buffer(NETWORK.as_ptr(), NETWORK.len(), &mut net));
        let (mut count, mut out_size) = (0, 0);
        ok(crk_network_input_count(net, &mut count));
        ok(crk_network_output_size(net, &mut out_size));
        let batch = 2;
        let inputs: Vec<Vec<f32>> = (0..count)
            .map(|j| {
                let (mut n_dims, mut size) = (0, 0);
                let mut shape = [0usize; 4];
                ok(crk_network_input_shape(net, j, shape.as_mut_ptr(), 4, &mut n_dims, &mut size));
                values(batch * size, 10 + j)
            })
            .collect();
        let pointers: Vec<*const f32> = inputs.iter().map(|v| v.as_ptr()).collect();
        let (mut one, mut two) = (vec![0.0f32; batch * out_size], vec![0.0f32; batch * out_size]);
        ok(crk_network_run(net, pointers.as_ptr(), count, batch, 1, one.as_mut_ptr(), one.len()));
        ok(crk_network_run(net, pointers.as_ptr(), count, batch, 2, two.as_mut_ptr(), two.len()));
        assert_eq!(one, two);
        fails(
            crk_network_run(net, pointers.as_ptr(), count, batch, 1, one.as_mut_ptr(), one.len() + 1),
            CRK_ERR_INVALID_ARGUMENT,
            "output_len",
        );
        crk_network_free(net);
        crk_network_free(null_mut());
    }
}

#[test]
fn surrogate_handle() {
    let n = 12;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let (a, b) = ((i % 4) as f64 / 3.0, (i / 4) as f64 / 2.0 + 0.01 * i as f64);
        x.extend([a, b]);
        y.push(1.0 + (a - 0.4).powi(2) + 0.5 * (b - 0.3).powi(2));
    }
    let weights = vec![1.0; n];
    let (degrees, alphas) = ([2usize], [1e-6]);
    let options = crk_surrogate_options {
        weighting: CRK_WEIGHTS_CUSTOM,
        custom_weights: weights.as_ptr(),
        start_index: 0,
        degrees: degrees.as_ptr(),
        n_degrees: 1,
        alphas: alphas.as_ptr(),
        n_alphas: 1,
    };
    // SAFETY: arrays of the sizes the calls are given; the handle freed once.
    unsafe {
        let mut s = null_mut();
        ok(crk_surrogate_fit(x.as_ptr(), n, 2, y.as_ptr(), &options, &mut s));
        let mut count = 0;
        ok(crk_surrogate_coefficients(s, null_mut(), 0, &mut count));
        let mut coefficients = vec![0.0; count];
        ok(crk_surrogate_coefficients(s, coefficients.as_mut_ptr(), count, &mut count));
        let mut predicted = [0.0; 2];
        ok(crk_surrogate_predict(s, x.as_ptr(), 2, predicted.as_mut_ptr()));
        assert!((predicted[0] - y[0]).abs() < 1e-6, "{predicted:?}");
        let mut g = [0.0; 2];
        ok(crk_surrogate_gradient(s, x.as_ptr(), g.as_mut_ptr()));
        let mut point = [0.0; 2];
        let mut step = crk_surrogate_step::default();
        ok(crk_surrogate_propose_step(s, 1.0, point.as_mut_ptr(), &mut step));
        fails(
            crk_surrogate_coefficients(s, coefficients.as_mut_ptr(), count - 1, &mut count),
            CRK_ERR_INVALID_ARGUMENT,
            "",
        );
        crk_surrogate_free(s);
    }
}

unsafe extern "C" fn count_calls(_done: usize, _total: usize, user_data: *mut c_void) -> i32 {
    // SAFETY: the test passes its own counter.
    unsafe { *(user_data as *mut u32) += 1 };
    0
}

/// Not under Miri: building even the smallest transport takes minutes there (its inverse
/// table is ~200 pieces of 10 root solves, whatever the energy range).
#[test]
#[cfg_attr(miri, ignore = "the transport tables take minutes to build under Miri")]
fn transport_and_ensemble_handles() {
    // SAFETY: arrays of the sizes the calls are given; handles freed once.
    unsafe {
        let mut losses = null_mut();
        let field = crk_photon_field { temperature_K: 2.7255, energy_density_eV_per_cm3: 0.26 };
        ok(crk_losses_new(CRK_LOSS_KN_EXACT, &field, 1, 3.0, &mut losses));
        let mut tr = null_mut();
        // Two octaves: the tables have a fixed number of pieces per octave.
        ok(crk_transport_new(losses, 3e28, 0.5, 4.0, 100.0, 400.0, &mut tr));
        crk_losses_free(losses); // the transport keeps its own copy
        let energy = [110.0, 200.0, 390.0];
        let age = [0.1, 0.2, 0.05];
        let mut e0 = [0.0; 3];
        ok(crk_transport_initial_energy(tr, energy.as_ptr(), age.as_ptr(), 3, e0.as_mut_ptr()));
        let mut l2 = e0;
        let p = l2.as_mut_ptr();
        ok(crk_transport_loss_length2(tr, energy.as_ptr(), p, 3, p));
        let params = crk_ensemble_params {
            sn_rate_per_Myr: 30.0,
            t_max_Myr: 1.0,
            s_max_kpc: 1.0,
            spatial: CRK_SPATIAL_UNIFORM_DISC,
            poisson_count: 1,
            spectrum: crk_source_spectrum { q_star_per_GeV: 1e50, gamma: 2.2, cutoff_GeV: 1e3 },
        };
        let mut ensemble = null_mut();
        ok(crk_ensemble_new(tr, &params, energy.as_ptr(), 3, &mut ensemble));
        let (mut one, mut two) = ([0.0; 6], [0.0; 6]);
        let mut calls = 0u32;
        ok(crk_ensemble_run(ensemble, 4, 0, 2, 1, one.as_mut_ptr(), None, null_mut()));
        ok(crk_ensemble_run(
            ensemble,
            4,
            0,
            2,
            2,
            two.as_mut_ptr(),
            Some(count_calls),
            &mut calls as *mut u32 as *mut c_void,
        ));
        assert_eq!(one, two);
        assert!(calls >= 1);
        let mut n = 0;
        ok(crk_ensemble_sources(ensemble, 4, 1, null_mut(), null_mut(), 0, &mut n));
        let (mut d, mut a) = (vec![0.0; n], vec![0.0; n]);
        ok(crk_ensemble_sources(ensemble, 4, 1, d.as_mut_ptr(), a.as_mut_ptr(), n, &mut n));
        let mut row = [0.0; 3];
        ok(crk_flux_from_sources(
            tr,
            &params.spectrum,
            d.as_ptr(),
            a.as_ptr(),
            n,
            energy.as_ptr(),
            3,
            row.as_mut_ptr(),
        ));
        for (r, o) in row.iter().zip(&one[3..]) {
            assert!((r - o).abs() <= 1e-12 * o.abs(), "{r} vs {o}");
        }
        crk_ensemble_free(ensemble);
        crk_transport_free(tr);
    }
}
