//! Issue 15 (4): the C ABI called from many threads at once, the way a C++ solver does.
//!
//! One handle of each kind (losses, transport, ensemble, MADE, network, surrogate, MADE
//! trainer) is made once, its raw pointer handed to 8 threads (more than this machine's cores), and every entry
//! point is called on it, good calls and bad ones (NaN, negative energy, NULL pointers, wrong
//! lengths) interleaved in a different order on each thread, with `threads` arguments of 1, 0
//! and 2. Every call must give exactly what it gave when run alone first: the same status,
//! the same output bits (`to_bits`) and the same `crk_last_error_message()`. So a failing call
//! names its own error, a successful one leaves an empty message, and no thread ever sees
//! another thread's message (the error slot is thread-local). Some threads make only good
//! calls and check the message is empty after each of them. Some cases also build, use and
//! free handles of their own while the shared ones are in use.
//!
//! Runs for about CRK_STRESS_SECONDS seconds (default 2) after a first full pass on every
//! thread. scripts/nightly-checks.sh runs it under ThreadSanitizer too.
#![cfg(not(miri))] // files, many threads and seconds of work: see tests/miri_ffi.rs

use std::ffi::{CStr, CString, c_void};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crkernels::ffi::classifier::{
    crk_two_sample_options, crk_two_sample_options_default, crk_two_sample_report, crk_two_sample_test,
};
use crkernels::ffi::ensemble::{
    CRK_SPATIAL_SPIRAL_ARMS, CRK_SPATIAL_UNIFORM_DISC, crk_ensemble, crk_ensemble_free,
    crk_ensemble_generate, crk_ensemble_new, crk_ensemble_params, crk_ensemble_run, crk_ensemble_sources,
    crk_flux_from_sources, crk_source_spectrum, crk_source_spectrum_from_energy,
};
use crkernels::ffi::gpu::crk_device_count;
use crkernels::ffi::losses::{
    CRK_ISRF_DELAHAYE2010, CRK_ISRF_MAX_COMPONENTS, CRK_LOSS_KN_EXACT, crk_isrf_preset_components,
    crk_losses, crk_losses_free, crk_losses_new, crk_losses_new_preset, crk_losses_new_thomson,
    crk_losses_rate, crk_photon_field,
};
use crkernels::ffi::made::{
    CRK_ACTIVATION_FROM_FILE, crk_made, crk_made_dims, crk_made_free, crk_made_load, crk_made_load_buffer,
    crk_made_load_buffer_with_options, crk_made_load_options, crk_made_load_with_options, crk_made_log_prob,
    crk_made_log_prob_gpu, crk_made_log_prob_grad, crk_made_order, crk_made_sample, crk_made_sample_given,
    crk_made_sample_given_gpu, crk_made_sample_gpu, crk_made_save, crk_made_workspace_bytes, crk_mixture_cdf,
    crk_mixture_log_pdf, crk_mixture_quantile, crk_mixture_sample,
};
use crkernels::ffi::network::{
    crk_network, crk_network_free, crk_network_input_count, crk_network_input_shape, crk_network_load,
    crk_network_load_buffer, crk_network_macs_per_sample, crk_network_output_size, crk_network_run,
    crk_network_workspace_bytes,
};
use crkernels::ffi::surrogate::{
    CRK_WEIGHTS_DISTANCE, crk_surrogate, crk_surrogate_coefficients, crk_surrogate_fit, crk_surrogate_free,
    crk_surrogate_get_info, crk_surrogate_gradient, crk_surrogate_info, crk_surrogate_options,
    crk_surrogate_predict, crk_surrogate_propose_step, crk_surrogate_step, crk_surrogate_validation_scores,
};
use crkernels::ffi::train::{
    crk_made_epoch_report, crk_made_train, crk_made_train_options, crk_made_train_options_default,
    crk_made_train_report, crk_made_trainer, crk_made_trainer_checkpoint, crk_made_trainer_epoch,
    crk_made_trainer_finished, crk_made_trainer_free, crk_made_trainer_model, crk_made_trainer_new,
    crk_made_trainer_report, crk_made_trainer_resume,
};
use crkernels::ffi::transport::{
    crk_transport, crk_transport_free, crk_transport_initial_energy, crk_transport_loss_length2,
    crk_transport_loss_time, crk_transport_max_age, crk_transport_new,
};
use crkernels::ffi::{
    CRK_ERR_CANCELLED, CRK_ERR_INVALID_ARGUMENT, CRK_ERR_NO_DEVICE, CRK_ERR_NULL_POINTER,
    CRK_ERR_OUT_OF_DOMAIN, CRK_OK, crk_last_error_message, crk_status,
};

/// Threads sharing the handles (the machine has 2 cores: they preempt each other mid-call).
const THREADS: usize = 8;
const MADE_MODEL: &str = "tests/data/made/plain_h2_relu_k10_ctx0_std.safetensors";
const NETWORK: &str = "tests/data/conv/net_sd_two_branch.safetensors";

/// A raw handle passed between threads as a C++ program passes it: the library promises
/// handles are immutable and may be shared, which the test checks.
struct Shared<T>(*mut T);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
// SAFETY: the library's handles are immutable after construction and documented as safe to
// share across threads; the pointee outlives every thread (freed after the scope ends).
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that closures capture the whole Send + Sync wrapper).
    fn get(self) -> *mut T {
        self.0
    }
}

fn last_message() -> String {
    // SAFETY: never NULL; valid until the next call into the library on this thread.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

/// What a call gave: its status, the message right after it, and the bits of what it wrote
/// (the untouched sentinels when it failed: nothing may be written then).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    status: crk_status,
    message: String,
    bits: Vec<u64>,
}

fn outcome(status: crk_status, bits: Vec<u64>) -> Outcome {
    Outcome { status, message: last_message(), bits }
}

/// The first failing status of a sequence of calls (CRK_OK if none failed).
fn first_error(statuses: &[crk_status]) -> crk_status {
    statuses.iter().copied().find(|&s| s != CRK_OK).unwrap_or(CRK_OK)
}

fn f64_bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn f32_bits(values: &[f32]) -> Vec<u64> {
    values.iter().map(|v| u64::from(v.to_bits())).collect()
}

fn usize_bits(values: &[usize]) -> Vec<u64> {
    values.iter().map(|&v| v as u64).collect()
}

/// Output buffers start as this (not a value any call computes): a failed call must leave it.
const SENTINEL64: f64 = -7.25e300;
const SENTINEL32: f32 = -7.25e30;

type Call = Box<dyn Fn() -> Outcome + Send + Sync>;

struct Case {
    name: String,
    /// The status it must return.
    expect: crk_status,
    /// A piece of text its error message must contain (it names its own error).
    keyword: &'static str,
    /// Cases of one group compute the same thing (thread counts 1, 0, 2; in place or not).
    group: Option<&'static str>,
    call: Call,
}

struct Cases(Vec<Case>);

impl Cases {
    fn good(&mut self, name: impl Into<String>, call: impl Fn() -> Outcome + Send + Sync + 'static) {
        self.push(name, CRK_OK, "", None, call);
    }

    fn grouped(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        call: impl Fn() -> Outcome + Send + Sync + 'static,
    ) {
        self.push(name, CRK_OK, "", Some(group), call);
    }

    fn bad(
        &mut self,
        name: impl Into<String>,
        expect: crk_status,
        keyword: &'static str,
        call: impl Fn() -> Outcome + Send + Sync + 'static,
    ) {
        self.push(name, expect, keyword, None, call);
    }

    fn push(
        &mut self,
        name: impl Into<String>,
        expect: crk_status,
        keyword: &'static str,
        group: Option<&'static str>,
        call: impl Fn() -> Outcome + Send + Sync + 'static,
    ) {
        self.0.push(Case { name: name.into(), expect, keyword, group, call: Box::new(call) });
    }
}

/// The shared handles.
struct Handles {
    losses: Shared<crk_losses>,
    transport: Shared<crk_transport>,
    ensemble: Shared<crk_ensemble>,
    made: Shared<crk_made>,
    network: Shared<crk_network>,
    surrogate: Shared<crk_surrogate>,
    /// A trainer after one epoch, only read by the cases (report, finished, model, checkpoint).
    trainer: Shared<crk_made_trainer>,
    /// Its checkpoint, written once at the start.
    trainer_checkpoint: CString,
    params: crk_ensemble_params,
    energy_grid: Vec<f64>,
}

fn path(relative: &str) -> CString {
    CString::new(format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn log_grid(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1) as f64)).collect()
}

/// A deterministic value in [-1, 1).
fn noise(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z ^= z >> 31;
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 29;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// The surrogate's training set: a 2-parameter quadratic, 60 points.
fn surrogate_data() -> (Vec<f64>, Vec<f64>) {
    let n = 60;
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (((i * 37) % 61) as f64 / 61.0, ((i * 53) % 59) as f64 / 59.0);
        x.extend([a, b]);
        y.push(10.0 + (a - 0.3).powi(2) + 2.0 * (b - 0.6).powi(2) + 0.01 * noise(i, 5));
    }
    (x, y)
}

const DEGREES: [usize; 2] = [1, 2];
const ALPHAS: [f64; 2] = [1e-6, 1e-2];

/// Fits the surrogate (options point into the constants above).
///
/// # Safety
/// `out` writable.
unsafe fn fit_surrogate(x: &[f64], y: &[f64], out: *mut *mut crk_surrogate) -> crk_status {
    let options = crk_surrogate_options {
        weighting: CRK_WEIGHTS_DISTANCE,
        custom_weights: null(),
        start_index: -1,
        degrees: DEGREES.as_ptr(),
        n_degrees: DEGREES.len(),
        alphas: ALPHAS.as_ptr(),
        n_alphas: ALPHAS.len(),
    };
    // SAFETY: arrays of the sizes given; options readable.
    unsafe { crk_surrogate_fit(x.as_ptr(), y.len(), 2, y.as_ptr(), &options, out) }
}

impl Handles {
    fn new() -> Self {
        let mut losses = null_mut();
        let mut transport = null_mut();
        let mut ensemble = null_mut();
        let mut made = null_mut();
        let mut network = null_mut();
        let mut surrogate = null_mut();
        let mut trainer = null_mut();
        let trainer_checkpoint =
            CString::new(format!("{}/concurrency_trainer_shared.safetensors", env!("CARGO_TARGET_TMPDIR")))
                .unwrap();
        let (train_context, train_x) = train_data();
        let mut params = crk_ensemble_params {
            sn_rate_per_Myr: 4e3,
            t_max_Myr: 7.0,
            s_max_kpc: 10.0,
            spatial: CRK_SPATIAL_SPIRAL_ARMS,
            poisson_count: 0,
            spectrum: crk_source_spectrum { q_star_per_GeV: 0.0, gamma: 0.0, cutoff_GeV: 0.0 },
        };
        let energy_grid = log_grid(16, 300.0, 8e3);
        let (x, y) = surrogate_data();
        // SAFETY: valid arguments; every out-pointer writable.
        unsafe {
            let check =
                |status: crk_status, what: &str| assert_eq!(status, CRK_OK, "{what}: {}", last_message());
            check(
                crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &mut losses),
                "losses",
            );
            check(crk_transport_new(losses, 3e28, 0.6, 4.0, 100.0, 1e6, &mut transport), "transport");
            check(crk_source_spectrum_from_energy(1e48, 1.0, 2.2, 1e4, &mut params.spectrum), "spectrum");
            check(
                crk_ensemble_new(transport, &params, energy_grid.as_ptr(), energy_grid.len(), &mut ensemble),
                "ensemble",
            );
            check(crk_made_load(path(MADE_MODEL).as_ptr(), &mut made), "MADE");
            check(crk_network_load(path(NETWORK).as_ptr(), &mut network), "network");
            check(fit_surrogate(&x, &y, &mut surrogate), "surrogate");
            let o = train_options(1);
            check(
                crk_made_trainer_new(
                    train_context.as_ptr(),
                    1,
                    train_x.as_ptr(),
                    2,
                    TRAIN_ROWS,
                    &o,
                    &mut trainer,
                ),
                "trainer",
            );
            check(crk_made_trainer_epoch(trainer, None, null_mut(), null_mut()), "trainer epoch");
            check(crk_made_trainer_checkpoint(trainer, trainer_checkpoint.as_ptr()), "trainer checkpoint");
        }
        Handles {
            losses: Shared(losses),
            transport: Shared(transport),
            ensemble: Shared(ensemble),
            made: Shared(made),
            network: Shared(network),
            surrogate: Shared(surrogate),
            trainer: Shared(trainer),
            trainer_checkpoint,
            params,
            energy_grid,
        }
    }

    fn free(self) {
        // SAFETY: live handles, not used afterwards (every thread has ended).
        unsafe {
            crk_made_trainer_free(self.trainer.get());
            crk_surrogate_free(self.surrogate.get());
            crk_network_free(self.network.get());
            crk_made_free(self.made.get());
            crk_ensemble_free(self.ensemble.get());
            crk_transport_free(self.transport.get());
            crk_losses_free(self.losses.get());
        }
    }
}

/// Loss rates, and building losses and transports while the shared ones are in use.
fn losses_cases(h: &Handles, cases: &mut Cases) {
    let losses = h.losses;
    let energy = log_grid(64, 0.5, 2e5);
    {
        let energy = energy.clone();
        cases.grouped("rates", "losses_rate", move || {
            let mut rate = vec![SENTINEL64; energy.len()];
            // SAFETY: live handle; arrays of n values.
            let s =
                unsafe { crk_losses_rate(losses.get(), energy.as_ptr(), energy.len(), rate.as_mut_ptr()) };
            outcome(s, f64_bits(&rate))
        });
    }
    {
        let energy = energy.clone();
        cases.grouped("rates", "losses_rate in place", move || {
            let mut buffer = energy.clone();
            // SAFETY: live handle; the same array in and out (allowed).
            let s =
                unsafe { crk_losses_rate(losses.get(), buffer.as_ptr(), buffer.len(), buffer.as_mut_ptr()) };
            outcome(s, f64_bits(&buffer))
        });
    }
    cases.good("losses_rate n = 0 with NULL arrays", move || {
        // SAFETY: n = 0: NULL arrays allowed.
        outcome(unsafe { crk_losses_rate(losses.get(), null(), 0, null_mut()) }, vec![])
    });
    for (index, bad, keyword) in
        [(3, f64::NAN, "element 3:"), (17, -2.0, "element 17:"), (40, f64::INFINITY, "element 40:")]
    {
        let mut energy = energy.clone();
        energy[index] = bad;
        cases.bad(
            format!("losses_rate energy[{index}] = {bad}"),
            CRK_ERR_INVALID_ARGUMENT,
            keyword,
            move || {
                let mut rate = vec![SENTINEL64; energy.len()];
                // SAFETY: live handle; arrays of n values.
                let s = unsafe {
                    crk_losses_rate(losses.get(), energy.as_ptr(), energy.len(), rate.as_mut_ptr())
                };
                outcome(s, f64_bits(&rate))
            },
        );
    }
    {
        let energy = energy.clone();
        cases.bad("losses_rate NULL losses", CRK_ERR_NULL_POINTER, "losses", move || {
            let mut rate = vec![SENTINEL64; energy.len()];
            // SAFETY: NULL handle is rejected.
            let s = unsafe { crk_losses_rate(null(), energy.as_ptr(), energy.len(), rate.as_mut_ptr()) };
            outcome(s, f64_bits(&rate))
        });
    }
    {
        let energy = energy.clone();
        cases.bad("losses_rate NULL output", CRK_ERR_NULL_POINTER, "rate_GeV_per_s", move || {
            // SAFETY: NULL output is rejected.
            outcome(
                unsafe { crk_losses_rate(losses.get(), energy.as_ptr(), energy.len(), null_mut()) },
                vec![],
            )
        });
    }
    cases.good("isrf_preset_components", || {
        let mut fields =
            [crk_photon_field { temperature_K: SENTINEL64, energy_density_eV_per_cm3: SENTINEL64 };
                CRK_ISRF_MAX_COMPONENTS];
        let mut n = 0;
        // SAFETY: room for CRK_ISRF_MAX_COMPONENTS.
        let s = unsafe {
            crk_isrf_preset_components(CRK_ISRF_DELAHAYE2010, fields.as_mut_ptr(), fields.len(), &mut n)
        };
        let mut bits = vec![n as u64];
        for f in &fields {
            bits.extend([f.temperature_K.to_bits(), f.energy_density_eV_per_cm3.to_bits()]);
        }
        outcome(s, bits)
    });
    cases.bad("isrf_preset_components unknown preset", CRK_ERR_INVALID_ARGUMENT, "99", || {
        let mut n = 12345;
        // SAFETY: capacity 0 with NULL fields.
        let s = unsafe { crk_isrf_preset_components(99, null_mut(), 0, &mut n) };
        outcome(s, vec![n as u64])
    });
    // Handles made, used and freed on the calling thread, concurrently with the shared ones.
    {
        let energy = energy.clone();
        cases.good("losses_new_preset + transport_new + max_age + free", move || {
            let (mut l, mut t) = (null_mut(), null_mut());
            let e = &energy[20..28];
            let mut out = vec![SENTINEL64; e.len()];
            // SAFETY: valid arguments; the handles are freed here and not used afterwards.
            unsafe {
                let s1 = crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 1.0, &mut l);
                let s2 = crk_transport_new(l, 1e28, 0.5, 0.0, 1.0, 1e4, &mut t);
                let s3 = crk_transport_max_age(t, e.as_ptr(), e.len(), out.as_mut_ptr());
                let o = outcome(first_error(&[s1, s2, s3]), f64_bits(&out));
                crk_transport_free(t);
                crk_losses_free(l);
                o
            }
        });
    }
    {
        let energy = energy.clone();
        cases.good("losses_new + losses_rate + free", move || {
            let fields = [
                crk_photon_field { temperature_K: 2.7255, energy_density_eV_per_cm3: 0.26 },
                crk_photon_field { temperature_K: 5000.0, energy_density_eV_per_cm3: 0.3 },
            ];
            let mut l = null_mut();
            let mut rate = vec![SENTINEL64; energy.len()];
            // SAFETY: two fields; arrays of n values; the handle is freed here.
            unsafe {
                let s1 = crk_losses_new(CRK_LOSS_KN_EXACT, fields.as_ptr(), fields.len(), 3.0, &mut l);
                let s2 = crk_losses_rate(l, energy.as_ptr(), energy.len(), rate.as_mut_ptr());
                let o = outcome(first_error(&[s1, s2]), f64_bits(&rate));
                crk_losses_free(l);
                o
            }
        });
    }
    cases.bad("losses_new negative energy density", CRK_ERR_INVALID_ARGUMENT, "energy density", || {
        let field = crk_photon_field { temperature_K: 2.7255, energy_density_eV_per_cm3: -1.0 };
        let mut l = null_mut();
        // SAFETY: one field; out writable.
        let s = unsafe { crk_losses_new(CRK_LOSS_KN_EXACT, &field, 1, 3.0, &mut l) };
        outcome(s, vec![l.is_null() as u64])
    });
    cases.bad("losses_new_thomson b0 = NaN", CRK_ERR_INVALID_ARGUMENT, "NaN", || {
        let mut l = null_mut();
        // SAFETY: out writable.
        let s = unsafe { crk_losses_new_thomson(f64::NAN, &mut l) };
        assert!(l.is_null());
        outcome(s, vec![])
    });
}

fn transport_cases(h: &Handles, cases: &mut Cases) {
    let tr = h.transport;
    let energy = log_grid(48, 120.0, 9e5);
    let age: Vec<f64> = (0..48).map(|i| 0.01 + 0.2 * (1.0 + noise(i, 1))).collect();
    // E0 from a single-threaded call, as input of the other look-ups.
    let mut e0 = vec![0.0; energy.len()];
    // SAFETY: live handle; arrays of n values.
    let s = unsafe {
        crk_transport_initial_energy(tr.get(), energy.as_ptr(), age.as_ptr(), energy.len(), e0.as_mut_ptr())
    };
    assert_eq!(s, CRK_OK, "{}", last_message());
    type TwoInOne =
        unsafe extern "C" fn(*const crk_transport, *const f64, *const f64, usize, *mut f64) -> crk_status;
    let functions: [(&str, TwoInOne, &Vec<f64>); 3] = [
        ("transport_initial_energy", crk_transport_initial_energy, &age),
        ("transport_loss_length2", crk_transport_loss_length2, &e0),
        ("transport_loss_time", crk_transport_loss_time, &e0),
    ];
    for (name, function, second) in functions {
        let (energy, second) = (energy.clone(), second.clone());
        cases.good(name, move || {
            let mut out = vec![SENTINEL64; energy.len()];
            // SAFETY: live handle; arrays of n values.
            let s = unsafe {
                function(tr.get(), energy.as_ptr(), second.as_ptr(), energy.len(), out.as_mut_ptr())
            };
            outcome(s, f64_bits(&out))
        });
    }
    {
        let energy = energy.clone();
        cases.good("transport_max_age", move || {
            let mut out = vec![SENTINEL64; energy.len()];
            // SAFETY: live handle; arrays of n values.
            let s =
                unsafe { crk_transport_max_age(tr.get(), energy.as_ptr(), energy.len(), out.as_mut_ptr()) };
            outcome(s, f64_bits(&out))
        });
    }
    {
        let (energy, mut age) = (energy.clone(), age.clone());
        age[9] = -1.0;
        cases.bad(
            "transport_initial_energy negative age",
            CRK_ERR_INVALID_ARGUMENT,
            "element 9: age",
            move || {
                let mut out = vec![SENTINEL64; energy.len()];
                // SAFETY: live handle; arrays of n values.
                let s = unsafe {
                    crk_transport_initial_energy(
                        tr.get(),
                        energy.as_ptr(),
                        age.as_ptr(),
                        energy.len(),
                        out.as_mut_ptr(),
                    )
                };
                outcome(s, f64_bits(&out))
            },
        );
    }
    {
        let (mut energy, e0) = (energy.clone(), e0.clone());
        energy[5] = 50.0; // below the table
        cases.bad(
            "transport_loss_time energy below the table",
            CRK_ERR_OUT_OF_DOMAIN,
            "element 5: energy 50 GeV",
            move || {
                let mut out = vec![SENTINEL64; energy.len()];
                // SAFETY: live handle; arrays of n values.
                let s = unsafe {
                    crk_transport_loss_time(
                        tr.get(),
                        energy.as_ptr(),
                        e0.as_ptr(),
                        energy.len(),
                        out.as_mut_ptr(),
                    )
                };
                outcome(s, f64_bits(&out))
            },
        );
    }
    {
        let mut energy = energy.clone();
        energy[30] = f64::NAN;
        cases.bad("transport_max_age NaN", CRK_ERR_INVALID_ARGUMENT, "element 30", move || {
            let mut out = vec![SENTINEL64; energy.len()];
            // SAFETY: live handle; arrays of n values.
            let s =
                unsafe { crk_transport_max_age(tr.get(), energy.as_ptr(), energy.len(), out.as_mut_ptr()) };
            outcome(s, f64_bits(&out))
        });
    }
    {
        let e0 = e0.clone();
        cases.bad("transport_loss_length2 NULL energy", CRK_ERR_NULL_POINTER, "energy_GeV", move || {
            let mut out = vec![SENTINEL64; e0.len()];
            // SAFETY: NULL input is rejected.
            let s = unsafe {
                crk_transport_loss_length2(tr.get(), null(), e0.as_ptr(), e0.len(), out.as_mut_ptr())
            };
            outcome(s, f64_bits(&out))
        });
    }
    cases.bad("transport_new NULL losses", CRK_ERR_NULL_POINTER, "losses", || {
        let mut t = null_mut();
        // SAFETY: NULL losses is rejected.
        let s = unsafe { crk_transport_new(null(), 3e28, 0.6, 4.0, 1.0, 1e6, &mut t) };
        outcome(s, vec![t.is_null() as u64])
    });
}

/// A progress callback that counts its calls in `*user_data` (a u64) and never cancels.
unsafe extern "C" fn count_progress(_done: usize, _total: usize, user_data: *mut c_void) -> i32 {
    // SAFETY: the caller passes a pointer to its own u64.
    unsafe { *(user_data as *mut u64) += 1 };
    0
}

/// A progress callback that cancels at once.
unsafe extern "C" fn cancel_progress(_done: usize, _total: usize, _user_data: *mut c_void) -> i32 {
    1
}

fn ensemble_cases(h: &Handles, cases: &mut Cases, no_device: bool) {
    let (ensemble, tr, params) = (h.ensemble, h.transport, h.params);
    let n_e = h.energy_grid.len();
    const N_REAL: usize = 3;
    for threads in [1, 0, 2] {
        cases.grouped("ensemble_run", format!("ensemble_run threads {threads}"), move || {
            let mut flux = vec![SENTINEL64; N_REAL * n_e];
            // SAFETY: live handle; flux holds n_realisations * n_energies values.
            let s = unsafe {
                crk_ensemble_run(ensemble.get(), 42, 7, N_REAL, threads, flux.as_mut_ptr(), None, null_mut())
            };
            outcome(s, f64_bits(&flux))
        });
    }
    cases.grouped("ensemble_run", "ensemble_run with a progress callback", move || {
        let mut flux = vec![SENTINEL64; N_REAL * n_e];
        let mut calls = 0u64;
        // SAFETY: as above; user_data points to this call's counter.
        let s = unsafe {
            crk_ensemble_run(
                ensemble.get(),
                42,
                7,
                N_REAL,
                2,
                flux.as_mut_ptr(),
                Some(count_progress),
                &mut calls as *mut u64 as *mut c_void,
            )
        };
        assert!(calls >= 1, "the progress callback was not called");
        outcome(s, f64_bits(&flux))
    });
    cases.bad("ensemble_run cancelled", CRK_ERR_CANCELLED, "cancel", move || {
        // On 2 threads the callback runs when the first worker stops, while the other still
        // runs: the run is always cancelled.
        let mut flux = vec![SENTINEL64; 4 * n_e];
        // SAFETY: as above. Which rows finished depends on timing: only the status and message count.
        let s = unsafe {
            crk_ensemble_run(ensemble.get(), 1, 0, 4, 2, flux.as_mut_ptr(), Some(cancel_progress), null_mut())
        };
        outcome(s, vec![])
    });
    cases.bad("ensemble_run NULL flux", CRK_ERR_NULL_POINTER, "flux is NULL", move || {
        // SAFETY: NULL flux is rejected.
        outcome(
            unsafe { crk_ensemble_run(ensemble.get(), 42, 7, 2, 1, null_mut(), None, null_mut()) },
            vec![],
        )
    });
    {
        let energy = h.energy_grid.clone();
        for threads in [1, 2] {
            let energy = energy.clone();
            cases.grouped("ensemble_run", format!("ensemble_generate threads {threads}"), move || {
                let mut flux = vec![SENTINEL64; N_REAL * n_e];
                // SAFETY: live transport; arrays of the given sizes.
                let s = unsafe {
                    crk_ensemble_generate(
                        tr.get(),
                        &params,
                        energy.as_ptr(),
                        energy.len(),
                        42,
                        7,
                        N_REAL,
                        threads,
                        flux.as_mut_ptr(),
                    )
                };
                outcome(s, f64_bits(&flux))
            });
        }
        let mut bad = params;
        bad.spatial = 7;
        let energy2 = energy.clone();
        cases.bad(
            "ensemble_generate unknown spatial model",
            CRK_ERR_INVALID_ARGUMENT,
            "spatial",
            move || {
                let mut flux = vec![SENTINEL64; n_e];
                // SAFETY: as above.
                let s = unsafe {
                    crk_ensemble_generate(
                        tr.get(),
                        &bad,
                        energy2.as_ptr(),
                        energy2.len(),
                        1,
                        0,
                        1,
                        1,
                        flux.as_mut_ptr(),
                    )
                };
                outcome(s, f64_bits(&flux))
            },
        );
        let mut bad = params;
        bad.spatial = CRK_SPATIAL_UNIFORM_DISC;
        bad.sn_rate_per_Myr = f64::NAN;
        cases.bad("ensemble_generate NaN rate", CRK_ERR_INVALID_ARGUMENT, "rate", move || {
            let mut flux = vec![SENTINEL64; n_e];
            // SAFETY: as above.
            let s = unsafe {
                crk_ensemble_generate(
                    tr.get(),
                    &bad,
                    energy.as_ptr(),
                    energy.len(),
                    1,
                    0,
                    1,
                    1,
                    flux.as_mut_ptr(),
                )
            };
            outcome(s, f64_bits(&flux))
        });
    }
    // The sources of realisation 8 and their flux by the summation kernel.
    let energy = h.energy_grid.clone();
    let spectrum = params.spectrum;
    cases.good("ensemble_sources + flux_from_sources", move || {
        let mut n = 0;
        // SAFETY: capacity 0 with NULL arrays only counts.
        let s1 = unsafe { crk_ensemble_sources(ensemble.get(), 42, 8, null_mut(), null_mut(), 0, &mut n) };
        let (mut d, mut a) = (vec![SENTINEL64; n], vec![SENTINEL64; n]);
        let mut flux = vec![SENTINEL64; energy.len()];
        // SAFETY: arrays with room for n values.
        let s2 =
            unsafe { crk_ensemble_sources(ensemble.get(), 42, 8, d.as_mut_ptr(), a.as_mut_ptr(), n, &mut n) };
        // SAFETY: arrays of the given lengths.
        let s3 = unsafe {
            crk_flux_from_sources(
                tr.get(),
                &spectrum,
                d.as_ptr(),
                a.as_ptr(),
                n,
                energy.as_ptr(),
                energy.len(),
                flux.as_mut_ptr(),
            )
        };
        let mut bits = vec![n as u64];
        bits.extend(f64_bits(&d));
        bits.extend(f64_bits(&a));
        bits.extend(f64_bits(&flux));
        outcome(first_error(&[s1, s2, s3]), bits)
    });
    cases.bad("ensemble_sources capacity too small", CRK_ERR_INVALID_ARGUMENT, "capacity", move || {
        let (mut d, mut a) = ([SENTINEL64; 1], [SENTINEL64; 1]);
        let mut n = 0;
        // SAFETY: room for 1.
        let s =
            unsafe { crk_ensemble_sources(ensemble.get(), 42, 8, d.as_mut_ptr(), a.as_mut_ptr(), 1, &mut n) };
        outcome(s, vec![n as u64, d[0].to_bits(), a[0].to_bits()])
    });
    if no_device {
        cases.bad("ensemble_run_gpu without a device", CRK_ERR_NO_DEVICE, "", move || {
            let mut flux = vec![SENTINEL64; n_e];
            // SAFETY: live handle; flux holds one row.
            let s = unsafe {
                crkernels::ffi::ensemble::crk_ensemble_run_gpu(ensemble.get(), 0, 1, 0, 1, flux.as_mut_ptr())
            };
            outcome(s, f64_bits(&flux))
        });
        let energy = h.energy_grid.clone();
        cases.bad("ensemble_generate_gpu without a device", CRK_ERR_NO_DEVICE, "", move || {
            let mut flux = vec![SENTINEL64; n_e];
            // SAFETY: live transport; arrays of the given sizes.
            let s = unsafe {
                crkernels::ffi::ensemble::crk_ensemble_generate_gpu(
                    tr.get(),
                    &params,
                    energy.as_ptr(),
                    energy.len(),
                    1,
                    0,
                    1,
                    0,
                    flux.as_mut_ptr(),
                )
            };
            outcome(s, f64_bits(&flux))
        });
    }
}

fn made_cases(h: &Handles, cases: &mut Cases, no_device: bool) {
    let made = h.made;
    let (mut c, mut d, mut k) = (0, 0, 0);
    // SAFETY: live handle; out-pointers writable.
    assert_eq!(unsafe { crk_made_dims(made.get(), &mut c, &mut d, &mut k) }, CRK_OK);
    let mut order = vec![0usize; d];
    // SAFETY: room for n_dims values.
    assert_eq!(unsafe { crk_made_order(made.get(), order.as_mut_ptr()) }, CRK_OK);
    const N: usize = 24;
    let context: Vec<f32> = (0..N * c).map(|i| (0.37 * i as f64).sin() as f32).collect();
    let mut x = vec![0.0f32; N * d];
    // SAFETY: arrays of the given sizes.
    assert_eq!(unsafe { crk_made_sample(made.get(), context.as_ptr(), N, 9, 1, x.as_mut_ptr()) }, CRK_OK);
    for (i, v) in x.iter_mut().enumerate() {
        *v += (0.05 * noise(i, 2)) as f32;
    }
    cases.good("made_dims + made_order", move || {
        let (mut c, mut d, mut k) = (0, 0, 0);
        // SAFETY: out-pointers writable.
        let s1 = unsafe { crk_made_dims(made.get(), &mut c, &mut d, &mut k) };
        let mut order = vec![usize::MAX; d];
        // SAFETY: room for n_dims values.
        let s2 = unsafe { crk_made_order(made.get(), order.as_mut_ptr()) };
        let mut bits = usize_bits(&[c, d, k]);
        bits.extend(usize_bits(&order));
        outcome(first_error(&[s1, s2]), bits)
    });
    for threads in [1, 0, 2] {
        let (context2, x) = (context.clone(), x.clone());
        cases.grouped("made_log_prob", format!("made_log_prob threads {threads}"), move || {
            let mut lp = vec![SENTINEL32; N];
            // SAFETY: arrays of the given sizes.
            let s = unsafe {
                crk_made_log_prob(made.get(), context2.as_ptr(), x.as_ptr(), N, threads, lp.as_mut_ptr())
            };
            outcome(s, f32_bits(&lp))
        });
        let context = context.clone();
        cases.grouped("made_sample", format!("made_sample threads {threads}"), move || {
            let mut out = vec![SENTINEL32; N * d];
            // SAFETY: arrays of the given sizes.
            let s =
                unsafe { crk_made_sample(made.get(), context.as_ptr(), N, 42, threads, out.as_mut_ptr()) };
            outcome(s, f32_bits(&out))
        });
    }
    for threads in [1, 0, 2] {
        let (context, x) = (context.clone(), x.clone());
        cases.grouped("made_log_prob_grad", format!("made_log_prob_grad threads {threads}"), move || {
            let (mut lp, mut gc, mut gx) =
                (vec![SENTINEL32; N], vec![SENTINEL32; N * c], vec![SENTINEL32; N * d]);
            // SAFETY: arrays of the given sizes.
            let s = unsafe {
                crk_made_log_prob_grad(
                    made.get(),
                    context.as_ptr(),
                    x.as_ptr(),
                    N,
                    threads,
                    lp.as_mut_ptr(),
                    gc.as_mut_ptr(),
                    gx.as_mut_ptr(),
                )
            };
            let mut bits = f32_bits(&lp);
            bits.extend(f32_bits(&gc));
            bits.extend(f32_bits(&gx));
            outcome(s, bits)
        });
    }
    {
        let (mut context, x) = (context.clone(), x.clone());
        context[5] = f32::INFINITY;
        cases.bad("made_log_prob_grad infinite context", CRK_ERR_INVALID_ARGUMENT, "context", move || {
            let mut gx = vec![SENTINEL32; N * d];
            // SAFETY: arrays of the given sizes; the other outputs NULL.
            let s = unsafe {
                crk_made_log_prob_grad(
                    made.get(),
                    context.as_ptr(),
                    x.as_ptr(),
                    N,
                    2,
                    null_mut(),
                    null_mut(),
                    gx.as_mut_ptr(),
                )
            };
            outcome(s, f32_bits(&gx))
        });
    }
    let given = vec![order[1], order[0]];
    for threads in [1, 2] {
        let (context, x, given) = (context.clone(), x.clone(), given.clone());
        cases.grouped("made_sample_given", format!("made_sample_given threads {threads}"), move || {
            let mut inout = x.clone();
            // SAFETY: arrays of the given sizes.
            let s = unsafe {
                crk_made_sample_given(
                    made.get(),
                    context.as_ptr(),
                    given.as_ptr(),
                    given.len(),
                    N,
                    7,
                    threads,
                    inout.as_mut_ptr(),
                )
            };
            outcome(s, f32_bits(&inout))
        });
    }
    for (row, col) in [(2, 3), (17, 0), (23, 4)] {
        let (context, mut x) = (context.clone(), x.clone());
        x[row * d + col] = f32::NAN;
        let keyword: &'static str = Box::leak(format!("x[{row}][{col}]").into_boxed_str());
        cases.bad(
            format!("made_log_prob NaN at x[{row}][{col}]"),
            CRK_ERR_INVALID_ARGUMENT,
            keyword,
            move || {
                let mut lp = vec![SENTINEL32; N];
                // SAFETY: arrays of the given sizes.
                let s = unsafe {
                    crk_made_log_prob(made.get(), context.as_ptr(), x.as_ptr(), N, 2, lp.as_mut_ptr())
                };
                outcome(s, f32_bits(&lp))
            },
        );
    }
    {
        let (context, x) = (context.clone(), x.clone());
        cases.bad("made_log_prob n = 0", CRK_ERR_INVALID_ARGUMENT, "n = 0", move || {
            let mut lp = [SENTINEL32];
            // SAFETY: n = 0 is rejected.
            let s =
                unsafe { crk_made_log_prob(made.get(), context.as_ptr(), x.as_ptr(), 0, 1, lp.as_mut_ptr()) };
            outcome(s, f32_bits(&lp))
        });
    }
    {
        let context = context.clone();
        cases.bad("made_sample NULL x_out", CRK_ERR_NULL_POINTER, "x_out", move || {
            // SAFETY: NULL output is rejected.
            outcome(unsafe { crk_made_sample(made.get(), context.as_ptr(), N, 42, 0, null_mut()) }, vec![])
        });
    }
    {
        let (context, x) = (context.clone(), x.clone());
        let not_leading = [order[2]];
        cases.bad(
            "made_sample_given dims not leading",
            CRK_ERR_INVALID_ARGUMENT,
            "autoregressive order",
            move || {
                let mut inout = x.clone();
                // SAFETY: arrays of the given sizes.
                let s = unsafe {
                    crk_made_sample_given(
                        made.get(),
                        context.as_ptr(),
                        not_leading.as_ptr(),
                        1,
                        N,
                        7,
                        1,
                        inout.as_mut_ptr(),
                    )
                };
                outcome(s, f32_bits(&inout))
            },
        );
    }
    cases.bad("made_dims NULL handle", CRK_ERR_NULL_POINTER, "m is NULL", || {
        let mut c = 0;
        // SAFETY: NULL handle is rejected.
        outcome(unsafe { crk_made_dims(null(), &mut c, null_mut(), null_mut()) }, vec![c as u64])
    });
    if no_device {
        let (context, x) = (context.clone(), x.clone());
        cases.bad("made_log_prob_gpu without a device", CRK_ERR_NO_DEVICE, "", move || {
            let mut lp = vec![SENTINEL32; N];
            // SAFETY: arrays of the given sizes.
            let s = unsafe {
                crk_made_log_prob_gpu(made.get(), 0, context.as_ptr(), x.as_ptr(), N, lp.as_mut_ptr())
            };
            outcome(s, f32_bits(&lp))
        });
    }
    // Load, use and free a model of one's own while the shared one is in use.
    {
        let (context, x) = (context.clone(), x.clone());
        cases.grouped("made_log_prob", "made_load + made_log_prob + made_free", move || {
            let mut own = null_mut();
            let mut lp = vec![SENTINEL32; N];
            // SAFETY: valid path; the handle is freed here.
            unsafe {
                let s1 = crk_made_load(path(MADE_MODEL).as_ptr(), &mut own);
                let s2 = crk_made_log_prob(own, context.as_ptr(), x.as_ptr(), N, 1, lp.as_mut_ptr());
                let o = outcome(first_error(&[s1, s2]), f32_bits(&lp));
                crk_made_free(own);
                o
            }
        });
    }
    cases.good("made_workspace_bytes", move || {
        let mut bytes = usize::MAX;
        // SAFETY: live handle; out-pointer writable.
        let s = unsafe { crk_made_workspace_bytes(made.get(), &mut bytes) };
        outcome(s, vec![bytes as u64])
    });
    // Every thread saves the shared model to the same file and reads it back: the writes are
    // atomic (a temporary file renamed), so each read sees one whole file, the same bytes.
    {
        let saved = format!("{}/concurrency_made_save.safetensors", env!("CARGO_TARGET_TMPDIR"));
        let c_saved = CString::new(saved.clone()).unwrap();
        cases.good("made_save", move || {
            // SAFETY: live handle; NUL-terminated path.
            let s = unsafe { crk_made_save(made.get(), c_saved.as_ptr()) };
            let bytes = std::fs::read(&saved).unwrap_or_default();
            // FNV-1a of the file, and its length.
            let hash = bytes
                .iter()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            outcome(s, vec![bytes.len() as u64, hash])
        });
    }
    cases.bad("made_save NULL path", CRK_ERR_NULL_POINTER, "path is NULL", move || {
        // SAFETY: a NULL path is rejected.
        outcome(unsafe { crk_made_save(made.get(), null()) }, vec![])
    });
    // Loads from a buffer and with options, the shared model in use meanwhile: the same
    // log-densities (the file records its settings; FROM_FILE keeps them).
    let file = std::fs::read(format!("{}/{MADE_MODEL}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for (name, from_buffer, with_options) in [
        ("made_load_buffer", true, false),
        ("made_load_buffer_with_options", true, true),
        ("made_load_with_options", false, true),
    ] {
        let (context, x, file) = (context.clone(), x.clone(), file.clone());
        cases.grouped("made_log_prob", format!("{name} + made_log_prob + made_free"), move || {
            let options = crk_made_load_options {
                activation: CRK_ACTIVATION_FROM_FILE,
                epsilon: 0.0,
                sbi_dummy_input: -1,
            };
            let mut own = null_mut();
            let mut lp = vec![SENTINEL32; N];
            // SAFETY: the buffer holds len bytes; the path is NUL-terminated; the handle is
            // freed here.
            unsafe {
                let s1 = match (from_buffer, with_options) {
                    (true, false) => crk_made_load_buffer(file.as_ptr(), file.len(), &mut own),
                    (true, true) => {
                        crk_made_load_buffer_with_options(file.as_ptr(), file.len(), &options, &mut own)
                    }
                    _ => crk_made_load_with_options(path(MADE_MODEL).as_ptr(), &options, &mut own),
                };
                let s2 = crk_made_log_prob(own, context.as_ptr(), x.as_ptr(), N, 2, lp.as_mut_ptr());
                let o = outcome(first_error(&[s1, s2]), f32_bits(&lp));
                crk_made_free(own);
                o
            }
        });
    }
    {
        let file = file.clone();
        cases.bad("made_load_buffer truncated", crkernels::ffi::CRK_ERR_FORMAT, "safetensors", move || {
            let mut own = null_mut();
            // SAFETY: the buffer holds at least len bytes.
            let s = unsafe { crk_made_load_buffer(file.as_ptr(), file.len() / 2, &mut own) };
            outcome(s, vec![own.is_null() as u64])
        });
    }
    if no_device {
        let context2 = context.clone();
        cases.bad("made_sample_gpu without a device", CRK_ERR_NO_DEVICE, "", move || {
            let mut out = vec![SENTINEL32; N * d];
            // SAFETY: arrays of the given sizes.
            let s = unsafe { crk_made_sample_gpu(made.get(), 0, context2.as_ptr(), N, 42, out.as_mut_ptr()) };
            outcome(s, f32_bits(&out))
        });
        let (context2, x2, given2) = (context.clone(), x.clone(), given.clone());
        cases.bad("made_sample_given_gpu without a device", CRK_ERR_NO_DEVICE, "", move || {
            let mut inout = x2.clone();
            // SAFETY: arrays of the given sizes.
            let s = unsafe {
                crk_made_sample_given_gpu(
                    made.get(),
                    0,
                    context2.as_ptr(),
                    given2.as_ptr(),
                    given2.len(),
                    N,
                    7,
                    inout.as_mut_ptr(),
                )
            };
            outcome(s, f32_bits(&inout))
        });
    }
    cases.bad("made_load missing file", crkernels::ffi::CRK_ERR_IO, "no_such_model", || {
        let mut own = null_mut();
        // SAFETY: a NUL-terminated path.
        let s =
            unsafe { crk_made_load(path("tests/data/made/no_such_model.safetensors").as_ptr(), &mut own) };
        outcome(s, vec![own.is_null() as u64])
    });
    // The stateless mixture kernels.
    let logits = [0.3, -0.2, 0.1];
    let means = [-1.0, 0.5, 2.0];
    let scales = [-0.5, 0.0, 0.3];
    let xs: Vec<f64> = (0..32).map(|i| 4.0 * noise(i, 3)).collect();
    let ps: Vec<f64> = (0..32).map(|i| 0.5 + 0.49 * noise(i, 4)).collect();
    type MixtureFn = unsafe extern "C" fn(
        *const f64,
        *const f64,
        *const f64,
        usize,
        *const f64,
        usize,
        *mut f64,
    ) -> crk_status;
    let functions: [(&str, MixtureFn, &Vec<f64>); 3] = [
        ("mixture_log_pdf", crk_mixture_log_pdf, &xs),
        ("mixture_cdf", crk_mixture_cdf, &xs),
        ("mixture_quantile", crk_mixture_quantile, &ps),
    ];
    for (name, function, values) in functions {
        let values = values.clone();
        cases.good(name, move || {
            let mut out = vec![SENTINEL64; values.len()];
            // SAFETY: k parameters each; n values.
            let s = unsafe {
                function(
                    logits.as_ptr(),
                    means.as_ptr(),
                    scales.as_ptr(),
                    3,
                    values.as_ptr(),
                    values.len(),
                    out.as_mut_ptr(),
                )
            };
            outcome(s, f64_bits(&out))
        });
    }
    cases.good("mixture_sample", move || {
        let mut out = vec![SENTINEL64; 32];
        // SAFETY: k parameters each; n values.
        let s = unsafe {
            crk_mixture_sample(
                logits.as_ptr(),
                means.as_ptr(),
                scales.as_ptr(),
                3,
                5,
                100,
                32,
                out.as_mut_ptr(),
            )
        };
        outcome(s, f64_bits(&out))
    });
    let mut bad_xs = xs.clone();
    bad_xs[11] = f64::NAN;
    cases.bad("mixture_log_pdf NaN x", CRK_ERR_INVALID_ARGUMENT, "x[11]", move || {
        let mut out = vec![SENTINEL64; bad_xs.len()];
        // SAFETY: k parameters each; n values.
        let s = unsafe {
            crk_mixture_log_pdf(
                logits.as_ptr(),
                means.as_ptr(),
                scales.as_ptr(),
                3,
                bad_xs.as_ptr(),
                bad_xs.len(),
                out.as_mut_ptr(),
            )
        };
        outcome(s, f64_bits(&out))
    });
}

fn network_cases(h: &Handles, cases: &mut Cases) {
    let net = h.network;
    let mut count = 0;
    let mut out_size = 0;
    // SAFETY: live handle; out-pointers writable.
    unsafe {
        assert_eq!(crk_network_input_count(net.get(), &mut count), CRK_OK);
        assert_eq!(crk_network_output_size(net.get(), &mut out_size), CRK_OK);
    }
    let sizes: Vec<usize> = (0..count)
        .map(|j| {
            let (mut n_dims, mut size) = (0, 0);
            // SAFETY: max_dims 0 with NULL shape.
            let s = unsafe { crk_network_input_shape(net.get(), j, null_mut(), 0, &mut n_dims, &mut size) };
            assert_eq!(s, CRK_OK);
            size
        })
        .collect();
    const BATCH: usize = 6;
    let inputs: Vec<Vec<f32>> = sizes
        .iter()
        .enumerate()
        .map(|(j, &size)| (0..BATCH * size).map(|i| noise(i, 10 + j as u64) as f32).collect())
        .collect();
    cases.good("network_input_count + input_shape + output_size", move || {
        let mut count = 0;
        let mut out_size = 0;
        // SAFETY: out-pointers writable.
        let mut status = unsafe { crk_network_input_count(net.get(), &mut count) };
        let mut bits = vec![count as u64];
        for j in 0..count {
            let mut shape = [usize::MAX; 4];
            let (mut n_dims, mut size) = (0, 0);
            // SAFETY: room for 4 sizes.
            status |= unsafe {
                crk_network_input_shape(net.get(), j, shape.as_mut_ptr(), 4, &mut n_dims, &mut size)
            };
            bits.extend(usize_bits(&[n_dims, size]));
            bits.extend(usize_bits(&shape));
        }
        // SAFETY: out-pointer writable.
        status |= unsafe { crk_network_output_size(net.get(), &mut out_size) };
        bits.push(out_size as u64);
        outcome(status, bits)
    });
    /// Runs the network on `inputs` with `n_inputs` and `output_len` as given.
    fn run(
        net: Shared<crk_network>,
        inputs: &[Vec<f32>],
        n_inputs: usize,
        threads: usize,
        output_len: usize,
        out_size: usize,
    ) -> Outcome {
        let pointers: Vec<*const f32> = inputs.iter().map(|v| v.as_ptr()).collect();
        let mut out = vec![SENTINEL32; BATCH * out_size];
        // SAFETY: n_inputs pointers to each input's values; output of output_len (at most
        // BATCH * out_size) values.
        let s = unsafe {
            crk_network_run(
                net.get(),
                pointers.as_ptr(),
                n_inputs,
                BATCH,
                threads,
                out.as_mut_ptr(),
                output_len,
            )
        };
        outcome(s, f32_bits(&out))
    }
    for threads in [1, 0, 2] {
        let inputs = inputs.clone();
        cases.grouped("network_run", format!("network_run threads {threads}"), move || {
            run(net, &inputs, inputs.len(), threads, BATCH * out_size, out_size)
        });
    }
    {
        let inputs = inputs.clone();
        cases.bad("network_run wrong output_len", CRK_ERR_INVALID_ARGUMENT, "output_len", move || {
            run(net, &inputs, inputs.len(), 1, BATCH * out_size - 1, out_size)
        });
    }
    {
        let inputs = inputs.clone();
        cases.bad("network_run wrong n_inputs", CRK_ERR_INVALID_ARGUMENT, "n_inputs", move || {
            run(net, &inputs, inputs.len() - 1, 2, BATCH * out_size, out_size)
        });
    }
    for (j, index, keyword) in [(0usize, 1usize, "sample 4 value 1 "), (1, 200, "sample 4 value 200 ")] {
        let mut inputs = inputs.clone();
        let sample = 4;
        inputs[j][sample * sizes[j] + index] = f32::INFINITY;
        cases.bad(format!("network_run infinite input {j}"), CRK_ERR_INVALID_ARGUMENT, keyword, move || {
            run(net, &inputs, inputs.len(), 0, BATCH * out_size, out_size)
        });
    }
    cases.bad("network_run NULL inputs", CRK_ERR_NULL_POINTER, "inputs", move || {
        let mut out = vec![SENTINEL32; BATCH * out_size];
        // SAFETY: NULL inputs are rejected.
        let s = unsafe {
            crk_network_run(net.get(), null(), count, BATCH, 1, out.as_mut_ptr(), BATCH * out_size)
        };
        outcome(s, f32_bits(&out))
    });
    cases.good("network_workspace_bytes + macs_per_sample", move || {
        let (mut bytes, mut chunk, mut per_sample, mut macs) = (usize::MAX, usize::MAX, usize::MAX, u64::MAX);
        // SAFETY: live handle; out-pointers writable.
        let s1 = unsafe { crk_network_workspace_bytes(net.get(), &mut bytes, &mut chunk, &mut per_sample) };
        // SAFETY: as above.
        let s2 = unsafe { crk_network_macs_per_sample(net.get(), &mut macs) };
        outcome(first_error(&[s1, s2]), vec![bytes as u64, chunk as u64, per_sample as u64, macs])
    });
    cases.bad("network_input_shape index out of range", CRK_ERR_INVALID_ARGUMENT, "index", move || {
        let (mut n_dims, mut size) = (0, 0);
        // SAFETY: max_dims 0 with NULL shape.
        let s = unsafe { crk_network_input_shape(net.get(), count, null_mut(), 0, &mut n_dims, &mut size) };
        outcome(s, usize_bits(&[n_dims, size]))
    });
    {
        let inputs = inputs.clone();
        let file = std::fs::read(format!("{}/{NETWORK}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        cases.grouped("network_run", "network_load_buffer + network_run + network_free", move || {
            let mut own = null_mut();
            // SAFETY: the buffer holds len bytes; the handle is freed here.
            let s = unsafe { crk_network_load_buffer(file.as_ptr(), file.len(), &mut own) };
            let mut o = run(Shared(own), &inputs, inputs.len(), 2, BATCH * out_size, out_size);
            o.status = first_error(&[s, o.status]);
            // SAFETY: made above, not used afterwards.
            unsafe { crk_network_free(own) };
            o
        });
    }
    let inputs = inputs.clone();
    cases.grouped("network_run", "network_load + network_run + network_free", move || {
        let mut own = null_mut();
        // SAFETY: a NUL-terminated path; the handle is freed here.
        let s = unsafe { crk_network_load(path(NETWORK).as_ptr(), &mut own) };
        let mut o = run(Shared(own), &inputs, inputs.len(), 1, BATCH * out_size, out_size);
        o.status |= s;
        // SAFETY: made above, not used afterwards.
        unsafe { crk_network_free(own) };
        o
    });
}

fn surrogate_cases(h: &Handles, cases: &mut Cases) {
    let sur = h.surrogate;
    cases.good("surrogate_get_info", move || {
        let mut info = crk_surrogate_info::default();
        // SAFETY: live handle; info writable.
        let s = unsafe { crk_surrogate_get_info(sur.get(), &mut info) };
        let bits = vec![
            info.n_params as u64,
            info.degree as u64,
            info.n_features as u64,
            info.start_index as u64,
            info.alpha.to_bits(),
        ];
        outcome(s, bits)
    });
    type Array = unsafe extern "C" fn(*const crk_surrogate, *mut f64, usize, *mut usize) -> crk_status;
    let functions: [(&str, Array); 2] = [
        ("surrogate_coefficients", crk_surrogate_coefficients),
        ("surrogate_validation_scores", crk_surrogate_validation_scores),
    ];
    for (name, function) in functions {
        cases.good(name, move || {
            let mut n = 0;
            // SAFETY: capacity 0 with NULL only counts.
            let s1 = unsafe { function(sur.get(), null_mut(), 0, &mut n) };
            let mut values = vec![SENTINEL64; n];
            // SAFETY: room for n values.
            let s2 = unsafe { function(sur.get(), values.as_mut_ptr(), n, &mut n) };
            let mut bits = vec![n as u64];
            bits.extend(f64_bits(&values));
            outcome(first_error(&[s1, s2]), bits)
        });
    }
    let points: Vec<f64> = (0..20).map(|i| 0.5 + 0.5 * noise(i, 6)).collect();
    {
        let points = points.clone();
        cases.good("surrogate_predict", move || {
            let mut nll = vec![SENTINEL64; points.len() / 2];
            // SAFETY: n_points * 2 values in, n_points out.
            let s = unsafe {
                crk_surrogate_predict(sur.get(), points.as_ptr(), points.len() / 2, nll.as_mut_ptr())
            };
            outcome(s, f64_bits(&nll))
        });
    }
    cases.good("surrogate_gradient", move || {
        let mut g = [SENTINEL64; 2];
        // SAFETY: n_params values each.
        let s = unsafe { crk_surrogate_gradient(sur.get(), [0.1, 0.9].as_ptr(), g.as_mut_ptr()) };
        outcome(s, f64_bits(&g))
    });
    cases.good("surrogate_propose_step", move || {
        let mut point = [SENTINEL64; 2];
        let mut step = crk_surrogate_step::default();
        // SAFETY: n_params values; step writable.
        let s = unsafe { crk_surrogate_propose_step(sur.get(), 1.0, point.as_mut_ptr(), &mut step) };
        let mut bits = f64_bits(&point);
        bits.extend(f64_bits(&[step.distance, step.gradient_norm, step.predicted_nll]));
        bits.extend([step.zero_gradient as u64, step.at_max_distance as u64]);
        outcome(s, bits)
    });
    cases.bad("surrogate_propose_step max 0", CRK_ERR_INVALID_ARGUMENT, "max", move || {
        let mut point = [SENTINEL64; 2];
        let mut step = crk_surrogate_step::default();
        // SAFETY: as above.
        let s = unsafe { crk_surrogate_propose_step(sur.get(), 0.0, point.as_mut_ptr(), &mut step) };
        outcome(s, f64_bits(&point))
    });
    cases.bad("surrogate_gradient NULL gradient", CRK_ERR_NULL_POINTER, "gradient", move || {
        // SAFETY: NULL output is rejected.
        outcome(unsafe { crk_surrogate_gradient(sur.get(), [0.1, 0.9].as_ptr(), null_mut()) }, vec![])
    });
    cases.bad("surrogate_get_info NULL handle", CRK_ERR_NULL_POINTER, "surrogate", || {
        let mut info = crk_surrogate_info::default();
        // SAFETY: NULL handle is rejected.
        outcome(unsafe { crk_surrogate_get_info(null(), &mut info) }, vec![info.degree as u64])
    });
    // A fit of one's own (the same data: the same coefficients as the shared handle).
    let (x, y) = surrogate_data();
    {
        let (x, y) = (x.clone(), y.clone());
        cases.good("surrogate_fit + coefficients + free", move || {
            let mut own = null_mut();
            // SAFETY: out writable; the handle is freed here.
            let s1 = unsafe { fit_surrogate(&x, &y, &mut own) };
            let mut values = [SENTINEL64; 5];
            let mut n = 0;
            // SAFETY: room for 5 values.
            let s2 = unsafe { crk_surrogate_coefficients(own, values.as_mut_ptr(), 5, &mut n) };
            let o = outcome(first_error(&[s1, s2]), f64_bits(&values));
            // SAFETY: made above, not used afterwards.
            unsafe { crk_surrogate_free(own) };
            o
        });
    }
    let mut x = x;
    x[7] = f64::NAN;
    cases.bad("surrogate_fit NaN x", CRK_ERR_INVALID_ARGUMENT, "x element 7", move || {
        let mut own = null_mut();
        // SAFETY: out writable.
        let s = unsafe { fit_surrogate(&x, &y, &mut own) };
        outcome(s, vec![own.is_null() as u64])
    });
}

/// The classifier two-sample test: no handle; a small problem (2 x 300 rows, 3 epochs), so
/// that many threads train at once, each with the bits it gets alone.
fn classifier_cases(cases: &mut Cases) {
    let d = 3;
    let a: Vec<f32> = (0..300 * d).map(|k| noise(k, 11) as f32).collect();
    let b: Vec<f32> =
        (0..300 * d).map(|k| (noise(k, 12) + if k % d == 0 { 0.3 } else { 0.0 }) as f32).collect();
    let options = move || {
        let mut o = crk_two_sample_options {
            n_hidden_layers: 0,
            hidden_units: [0; 8],
            batch_size: 0,
            learning_rate: 0.0,
            max_epochs: 0,
            patience: 0,
            validation_fraction: 0.0,
            test_fraction: 0.0,
            seed: 0,
        };
        // SAFETY: o writable.
        unsafe { crk_two_sample_options_default(&mut o) };
        o.max_epochs = 3;
        o
    };
    let bits = |s: crk_status, r: &crk_two_sample_report| {
        let mut bits = f64_bits(&[r.test_accuracy, r.test_bce, r.best_validation_bce, r.final_train_bce]);
        bits.extend(usize_bits(&[r.epochs_run, r.best_epoch, r.n_train, r.n_validation, r.n_test]));
        outcome(s, bits)
    };
    {
        let (a, b) = (a.clone(), b.clone());
        cases.good("two_sample_test", move || {
            let o = options();
            let mut r = crk_two_sample_report { test_accuracy: SENTINEL64, ..Default::default() };
            // SAFETY: 300 rows of d values each; options and report valid.
            let s = unsafe { crk_two_sample_test(a.as_ptr(), 300, b.as_ptr(), 300, d, &o, &mut r) };
            bits(s, &r)
        });
    }
    {
        let (mut a, b) = (a.clone(), b.clone());
        a[4] = f32::NAN;
        cases.bad("two_sample_test NaN", CRK_ERR_INVALID_ARGUMENT, "a row 1 column 1", move || {
            let o = options();
            let mut r = crk_two_sample_report { test_accuracy: SENTINEL64, ..Default::default() };
            // SAFETY: as above.
            let s = unsafe { crk_two_sample_test(a.as_ptr(), 300, b.as_ptr(), 300, d, &o, &mut r) };
            bits(s, &r)
        });
    }
    cases.bad("two_sample_test 9 layers", CRK_ERR_INVALID_ARGUMENT, "n_hidden_layers", move || {
        let mut o = options();
        o.n_hidden_layers = 9;
        let mut r = crk_two_sample_report { test_accuracy: SENTINEL64, ..Default::default() };
        // SAFETY: as above.
        let s = unsafe { crk_two_sample_test(a.as_ptr(), 300, b.as_ptr(), 300, d, &o, &mut r) };
        bits(s, &r)
    });
    cases.bad("two_sample_test NULL b", CRK_ERR_NULL_POINTER, "b is NULL", move || {
        let mut r = crk_two_sample_report { test_accuracy: SENTINEL64, ..Default::default() };
        // SAFETY: a NULL b is rejected before anything is read.
        let s = unsafe { crk_two_sample_test([0.0f32; 3].as_ptr(), 1, null(), 1, 3, null(), &mut r) };
        bits(s, &r)
    });
}

/// Rows of the trainer's data set (a conditional Gaussian: 1 context, 2 dimensions).
const TRAIN_ROWS: usize = 240;

/// c in [0, 1); x1 = 2 c + 0.3 noise; x2 = 0.5 x1 - c + 0.2 noise: ([n] context, [n][2] x).
fn train_data() -> (Vec<f32>, Vec<f32>) {
    let mut context = Vec::with_capacity(TRAIN_ROWS);
    let mut x = Vec::with_capacity(2 * TRAIN_ROWS);
    for i in 0..TRAIN_ROWS {
        let c = 0.5 + 0.5 * noise(i, 21);
        let x1 = 2.0 * c + 0.3 * noise(i, 22);
        let x2 = 0.5 * x1 - c + 0.2 * noise(i, 23);
        context.push(c as f32);
        x.extend([x1 as f32, x2 as f32]);
    }
    (context, x)
}

/// A tiny run: one hidden layer of 8 units, K = 2, minibatch 40, 2 epochs, no early stopping.
fn train_options(n_threads: usize) -> crk_made_train_options {
    let mut o = std::mem::MaybeUninit::<crk_made_train_options>::uninit();
    // SAFETY: writable; crk_made_train_options_default writes every field.
    let mut o = unsafe {
        crk_made_train_options_default(o.as_mut_ptr());
        o.assume_init()
    };
    o.hidden_units[0] = 8;
    o.n_components = 2;
    o.batch_size = 40;
    o.max_epochs = 2;
    o.patience = 0;
    o.seed = 17;
    o.n_threads = n_threads;
    o
}

/// A report with every field the sentinel (a failed call must leave it).
fn sentinel_report() -> crk_made_train_report {
    crk_made_train_report {
        epochs_run: usize::MAX,
        best_epoch: usize::MAX,
        best_validation_nll: SENTINEL64,
        final_train_nll: SENTINEL64,
        last_validation_nll: SENTINEL64,
        seconds: SENTINEL64,
    }
}

/// The bits of a report, without its wall time.
fn report_bits(r: &crk_made_train_report) -> Vec<u64> {
    let mut bits = usize_bits(&[r.epochs_run, r.best_epoch]);
    bits.extend(f64_bits(&[r.best_validation_nll, r.final_train_nll, r.last_validation_nll]));
    bits
}

/// The bits of a model's log-densities on the training data (and frees it); a NULL model
/// gives [u64::MAX].
///
/// # Safety
/// `made` a live handle (freed here) or NULL.
unsafe fn model_bits(made: *mut crk_made, context: &[f32], x: &[f32]) -> Vec<u64> {
    if made.is_null() {
        return vec![u64::MAX];
    }
    let mut lp = vec![SENTINEL32; TRAIN_ROWS];
    // SAFETY: live handle; TRAIN_ROWS rows of 1 context and 2 values; lp holds TRAIN_ROWS.
    let s = unsafe { crk_made_log_prob(made, context.as_ptr(), x.as_ptr(), TRAIN_ROWS, 1, lp.as_mut_ptr()) };
    assert_eq!(s, CRK_OK, "log_prob of a trained model: {}", last_message());
    // SAFETY: live handle, not used afterwards.
    unsafe { crk_made_free(made) };
    f32_bits(&lp)
}

/// A file name of its own for each call (threads write checkpoints at once).
fn unique_checkpoint() -> (String, CString) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = format!(
        "{}/concurrency_trainer_{}.safetensors",
        env!("CARGO_TARGET_TMPDIR"),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let c = CString::new(path.clone()).unwrap();
    (path, c)
}

/// A progress callback that cancels at its first call.
unsafe extern "C" fn cancel_at_once(_done: usize, _total: usize, _user_data: *mut c_void) -> i32 {
    1
}

/// The trainer: crk_made_train on 1, 0 and 2 threads, and the same run through a trainer of
/// each call's own (an epoch, a checkpoint to a file of its own, a fresh trainer resumed from
/// it, the second epoch): one model, bit for bit. The shared trainer is read from every
/// thread at once (report, finished, model, checkpoint). Bad input.
fn train_cases(h: &Handles, cases: &mut Cases) {
    let (context, x) = train_data();
    for threads in [1usize, 0, 2] {
        let (context, x) = (context.clone(), x.clone());
        cases.grouped("made_train", format!("made_train threads {threads}"), move || {
            let o = train_options(threads);
            let mut out = null_mut();
            let mut r = sentinel_report();
            // SAFETY: TRAIN_ROWS rows of 1 context and 2 values; options, out and report valid.
            let s = unsafe {
                crk_made_train(
                    context.as_ptr(),
                    1,
                    x.as_ptr(),
                    2,
                    TRAIN_ROWS,
                    &o,
                    None,
                    null_mut(),
                    &mut out,
                    &mut r,
                )
            };
            let message = last_message();
            // SAFETY: out is the trained model or NULL.
            let mut bits = unsafe { model_bits(out, &context, &x) };
            bits.extend(report_bits(&r));
            Outcome { status: s, message, bits }
        });
    }
    {
        let (context, x) = (context.clone(), x.clone());
        cases.grouped("made_train", "made_trainer epoch, checkpoint, resume", move || {
            let (file, c_file) = unique_checkpoint();
            let (mut first, mut second, mut made) = (null_mut(), null_mut(), null_mut());
            let mut e = crk_made_epoch_report::default();
            let mut r = sentinel_report();
            let mut finished = -1;
            // SAFETY: data as above; handles made here and freed before returning.
            let (statuses, bits) = unsafe {
                let o1 = train_options(1);
                let o2 = train_options(2);
                let statuses = [
                    crk_made_trainer_new(context.as_ptr(), 1, x.as_ptr(), 2, TRAIN_ROWS, &o1, &mut first),
                    crk_made_trainer_epoch(first, None, null_mut(), &mut e),
                    crk_made_trainer_checkpoint(first, c_file.as_ptr()),
                    crk_made_trainer_new(context.as_ptr(), 1, x.as_ptr(), 2, TRAIN_ROWS, &o2, &mut second),
                    crk_made_trainer_resume(second, c_file.as_ptr()),
                    crk_made_trainer_epoch(second, None, null_mut(), &mut e),
                    crk_made_trainer_finished(second, &mut finished),
                    crk_made_trainer_report(second, &mut r),
                    crk_made_trainer_model(second, &mut made),
                ];
                crk_made_trainer_free(first);
                crk_made_trainer_free(second);
                let mut bits = model_bits(made, &context, &x);
                bits.extend(report_bits(&r));
                (statuses, bits)
            };
            let o = outcome(first_error(&statuses), bits);
            let _ = std::fs::remove_file(file);
            assert!(
                o.status != CRK_OK || (e.epoch == 2 && finished == 1),
                "epoch {} finished {finished}",
                e.epoch
            );
            o
        });
    }
    let trainer = h.trainer;
    cases.good("made_trainer_report shared", move || {
        let mut r = sentinel_report();
        // SAFETY: live handle; report writable.
        let s = unsafe { crk_made_trainer_report(trainer.get(), &mut r) };
        let mut bits = report_bits(&r);
        bits.push(r.seconds.to_bits());
        outcome(s, bits)
    });
    cases.good("made_trainer_finished shared", move || {
        let mut finished = -1;
        // SAFETY: live handle; finished writable.
        let s = unsafe { crk_made_trainer_finished(trainer.get(), &mut finished) };
        outcome(s, vec![finished as u64])
    });
    {
        let (context, x) = (context.clone(), x.clone());
        cases.good("made_trainer_model shared", move || {
            let mut made = null_mut();
            // SAFETY: live handle; out writable.
            let s = unsafe { crk_made_trainer_model(trainer.get(), &mut made) };
            let message = last_message();
            // SAFETY: a new model or NULL.
            Outcome { status: s, message, bits: unsafe { model_bits(made, &context, &x) } }
        });
    }
    // Every thread checkpoints the shared trainer to a file of its own: the same bytes.
    cases.good("made_trainer_checkpoint shared", move || {
        let (file, c_file) = unique_checkpoint();
        // SAFETY: live handle; NUL-terminated path.
        let s = unsafe { crk_made_trainer_checkpoint(trainer.get(), c_file.as_ptr()) };
        let bytes = std::fs::read(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        let hash = bytes
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        outcome(s, vec![bytes.len() as u64, hash])
    });
    cases.bad("made_trainer_checkpoint NULL path", CRK_ERR_NULL_POINTER, "path is NULL", move || {
        // SAFETY: a NULL path is rejected.
        outcome(unsafe { crk_made_trainer_checkpoint(trainer.get(), null()) }, vec![])
    });
    cases.bad("made_trainer_report NULL trainer", CRK_ERR_NULL_POINTER, "trainer", || {
        let mut r = sentinel_report();
        // SAFETY: a NULL trainer is rejected.
        let s = unsafe { crk_made_trainer_report(null(), &mut r) };
        outcome(s, report_bits(&r))
    });
    cases.bad("made_trainer_finished NULL trainer", CRK_ERR_NULL_POINTER, "trainer", || {
        let mut finished = -1;
        // SAFETY: a NULL trainer is rejected.
        let s = unsafe { crk_made_trainer_finished(null(), &mut finished) };
        outcome(s, vec![finished as u64])
    });
    cases.bad("made_trainer_model NULL trainer", CRK_ERR_NULL_POINTER, "trainer", || {
        let mut made = null_mut();
        // SAFETY: a NULL trainer is rejected.
        let s = unsafe { crk_made_trainer_model(null(), &mut made) };
        outcome(s, vec![made.is_null() as u64])
    });
    cases.bad("made_trainer_epoch NULL trainer", CRK_ERR_NULL_POINTER, "trainer", || {
        // SAFETY: a NULL trainer is rejected.
        outcome(unsafe { crk_made_trainer_epoch(null_mut(), None, null_mut(), null_mut()) }, vec![])
    });
    cases.bad("made_trainer_resume NULL trainer", CRK_ERR_NULL_POINTER, "trainer", || {
        // SAFETY: a NULL trainer is rejected.
        outcome(unsafe { crk_made_trainer_resume(null_mut(), c"x".as_ptr()) }, vec![])
    });
    // Bad data and options: the status, the message, nothing written.
    let bad_train = |name: &'static str,
                     expect: crk_status,
                     keyword: &'static str,
                     context: Vec<f32>,
                     x: Vec<f32>,
                     edit: fn(&mut crk_made_train_options),
                     cases: &mut Cases| {
        cases.bad(name, expect, keyword, move || {
            let mut o = train_options(1);
            edit(&mut o);
            let mut out = null_mut();
            let mut r = sentinel_report();
            // SAFETY: data as above; options, out and report valid.
            let s = unsafe {
                crk_made_train(
                    context.as_ptr(),
                    1,
                    x.as_ptr(),
                    2,
                    TRAIN_ROWS,
                    &o,
                    None,
                    null_mut(),
                    &mut out,
                    &mut r,
                )
            };
            let message = last_message();
            let mut bits = vec![out.is_null() as u64];
            bits.extend(report_bits(&r));
            // SAFETY: NULL (checked by the bits) or a model to release.
            unsafe { crk_made_free(out) };
            Outcome { status: s, message, bits }
        });
    };
    let mut nan_x = x.clone();
    nan_x[7] = f32::NAN;
    bad_train("made_train NaN x", CRK_ERR_INVALID_ARGUMENT, "x[3][1]", context.clone(), nan_x, |_| {}, cases);
    bad_train(
        "made_train 9 layers",
        CRK_ERR_INVALID_ARGUMENT,
        "n_hidden_layers",
        context.clone(),
        x.clone(),
        |o| o.n_hidden_layers = 9,
        cases,
    );
    bad_train(
        "made_train zero units",
        CRK_ERR_INVALID_ARGUMENT,
        "0 units",
        context.clone(),
        x.clone(),
        |o| o.hidden_units[0] = 0,
        cases,
    );
    cases.bad("made_train NULL options", CRK_ERR_NULL_POINTER, "options is NULL", || {
        let mut out = null_mut();
        let x = [0.0f32; 2];
        // SAFETY: a NULL options pointer is rejected before anything is read.
        let s = unsafe {
            crk_made_train(null(), 0, x.as_ptr(), 2, 1, null(), None, null_mut(), &mut out, null_mut())
        };
        outcome(s, vec![out.is_null() as u64])
    });
    // A trainer of the call's own: a checkpoint of another model (the shared trainer's, 8
    // hidden units, resumed by one with 9) and a missing file are refused, the trainer fresh.
    // (Cancellation is timing-dependent, mid-epoch or at its end: trainer_from_many_threads.)
    let own_trainer_case = |name: &'static str,
                            expect: crk_status,
                            keyword: &'static str,
                            units: usize,
                            call: fn(*mut crk_made_trainer, &CStr) -> crk_status,
                            checkpoint: CString,
                            cases: &mut Cases| {
        let (context, x) = (context.clone(), x.clone());
        cases.bad(name, expect, keyword, move || {
            let mut o = train_options(1);
            o.hidden_units[0] = units;
            let mut t = null_mut();
            // SAFETY: data as above; out writable.
            let made =
                unsafe { crk_made_trainer_new(context.as_ptr(), 1, x.as_ptr(), 2, TRAIN_ROWS, &o, &mut t) };
            assert_eq!(made, CRK_OK, "{name}: trainer_new: {}", last_message());
            let s = call(t, &checkpoint);
            let first = last_message();
            let mut r = sentinel_report();
            // SAFETY: live handle; report writable.
            assert_eq!(unsafe { crk_made_trainer_report(t, &mut r) }, CRK_OK);
            // The trainer is still fresh: the same refusal again (its message is the last).
            assert_eq!(call(t, &checkpoint), s, "{name}: a second try");
            // SAFETY: live handle, not used afterwards.
            unsafe { crk_made_trainer_free(t) };
            let o = outcome(s, vec![r.epochs_run as u64]);
            assert_eq!(o.message, first, "{name}: the message changed");
            o
        });
    };
    own_trainer_case(
        "made_trainer_resume another model",
        CRK_ERR_INVALID_ARGUMENT,
        "its hidden_units is 8, this run's 9",
        9,
        // SAFETY: a live handle; NUL-terminated path.
        |t, path| unsafe { crk_made_trainer_resume(t, path.as_ptr()) },
        h.trainer_checkpoint.clone(),
        cases,
    );
    own_trainer_case(
        "made_trainer_resume missing file",
        crkernels::ffi::CRK_ERR_IO,
        "cannot read",
        8,
        // SAFETY: a live handle; NUL-terminated path.
        |t, path| unsafe { crk_made_trainer_resume(t, path.as_ptr()) },
        CString::new(format!("{}/no_such_checkpoint.safetensors", env!("CARGO_TARGET_TMPDIR"))).unwrap(),
        cases,
    );
}

fn all_cases(h: &Handles) -> Vec<Case> {
    let mut devices = -1;
    // SAFETY: count writable.
    assert_eq!(unsafe { crk_device_count(&mut devices) }, CRK_OK);
    let no_device = devices == 0;
    let mut cases = Cases(Vec::new());
    losses_cases(h, &mut cases);
    transport_cases(h, &mut cases);
    ensemble_cases(h, &mut cases, no_device);
    made_cases(h, &mut cases, no_device);
    network_cases(h, &mut cases);
    surrogate_cases(h, &mut cases);
    classifier_cases(&mut cases);
    train_cases(h, &mut cases);
    cases.0
}

/// A permutation of 0..n from a seed (Fisher-Yates on splitmix64).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    order
}

fn stress_seconds() -> f64 {
    std::env::var("CRK_STRESS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

#[test]
fn shared_handles_from_many_threads() {
    let handles = Handles::new();
    let cases = all_cases(&handles);

    // The reference: every case alone, on this thread.
    let expected: Vec<Outcome> = cases.iter().map(|case| (case.call)()).collect();
    let mut wrong = Vec::new();
    for (case, want) in cases.iter().zip(&expected) {
        if want.status != case.expect {
            wrong.push(format!("{}: status {} ({:?})", case.name, want.status, want.message));
        } else if case.expect == CRK_OK && !want.message.is_empty() {
            wrong.push(format!("{}: a successful call left a message {:?}", case.name, want.message));
        } else if case.expect != CRK_OK && (want.message.is_empty() || !want.message.contains(case.keyword)) {
            wrong.push(format!(
                "{}: message {:?} does not name its error ({:?})",
                case.name, want.message, case.keyword
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    if std::env::var_os("CRK_STRESS_VERBOSE").is_some() {
        for (case, want) in cases.iter().zip(&expected) {
            eprintln!("{}: {} {:?}", case.name, want.status, want.message);
        }
    }
    for (case, want) in cases.iter().zip(&expected) {
        // A second run alone gives the same (the reference is deterministic).
        assert_eq!((case.call)(), *want, "{}: not reproducible on one thread", case.name);
    }
    // Thread counts 1, 0 and 2, in place or not, own handles or shared: the same bits.
    for (case, want) in cases.iter().zip(&expected) {
        if let Some(group) = case.group {
            let first = cases.iter().position(|c| c.group == Some(group)).unwrap();
            assert_eq!(want.bits, expected[first].bits, "{} differs from {}", case.name, cases[first].name);
        }
    }
    let n_bad = cases.iter().filter(|c| c.expect != CRK_OK).count();
    assert!(n_bad >= 20 && cases.len() - n_bad >= 30, "{} cases, {n_bad} bad", cases.len());

    let seconds = stress_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let calls: Vec<usize> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cases, expected) = (&cases, &expected);
                scope.spawn(move || {
                    // Threads 0 and 4 only make good calls: they must never see a message.
                    let clean = t % 4 == 0;
                    let mut calls = 0;
                    for round in 0.. {
                        for i in shuffled(cases.len(), (t as u64) << 32 | round) {
                            let case = &cases[i];
                            if clean && case.expect != CRK_OK {
                                continue;
                            }
                            let got = (case.call)();
                            calls += 1;
                            assert_eq!(got, expected[i], "thread {t}, round {round}: {}", case.name);
                            // Other threads fail meanwhile: this thread's message stays its own.
                            std::thread::yield_now();
                            assert_eq!(
                                last_message(),
                                expected[i].message,
                                "thread {t}: {} later",
                                case.name
                            );
                        }
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    calls
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    eprintln!(
        "{} cases ({n_bad} bad), {} calls on {THREADS} threads in {:.2} s: {calls:?}",
        cases.len(),
        calls.iter().sum::<usize>(),
        start.elapsed().as_secs_f64()
    );
    drop(cases);
    handles.free();
}

/// The trainer from 8 threads beyond the shared-handle cases: (1) a trainer shared by all
/// threads while thread 0 trains it epoch by epoch, the others reading its report, finished
/// flag and model meanwhile (the calls are serialised: each sees a whole epoch's state, the
/// epochs counted never go back, and the run ends as crk_made_train's on the same seed, bit for
/// bit); (2) every thread cancels crk_made_train and a trainer's epoch through the progress
/// callback (mid-epoch or at its end, as the timing falls: the status, no model, the message).
#[test]
fn trainer_from_many_threads() {
    let (context, x) = train_data();
    let mut o = train_options(1);
    o.max_epochs = 6;
    let mut straight = null_mut();
    let mut t = null_mut();
    // SAFETY: TRAIN_ROWS rows of 1 context and 2 values; options and outs valid.
    unsafe {
        assert_eq!(
            crk_made_train(
                context.as_ptr(),
                1,
                x.as_ptr(),
                2,
                TRAIN_ROWS,
                &o,
                None,
                null_mut(),
                &mut straight,
                null_mut()
            ),
            CRK_OK
        );
        assert_eq!(crk_made_trainer_new(context.as_ptr(), 1, x.as_ptr(), 2, TRAIN_ROWS, &o, &mut t), CRK_OK);
    }
    // SAFETY: a model made above.
    let want = unsafe { model_bits(straight, &context, &x) };
    let trainer = Shared(t);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut finished = 0;
            while finished == 0 {
                let mut e = crk_made_epoch_report::default();
                // SAFETY: live handle; outs writable.
                unsafe {
                    assert_eq!(crk_made_trainer_epoch(trainer.get(), None, null_mut(), &mut e), CRK_OK);
                    assert_eq!(crk_made_trainer_finished(trainer.get(), &mut finished), CRK_OK);
                }
                assert!(
                    e.epoch >= 1 && e.epoch <= 6 && (finished == 1) == (e.epoch == 6),
                    "epoch {}",
                    e.epoch
                );
                std::thread::yield_now();
            }
        });
        for _ in 1..THREADS {
            scope.spawn(|| {
                let mut seen = 0;
                loop {
                    let (mut finished, mut made) = (-1, null_mut());
                    let mut r = sentinel_report();
                    // SAFETY: live handle; outs writable; the model is freed by model_bits.
                    let bits = unsafe {
                        assert_eq!(crk_made_trainer_finished(trainer.get(), &mut finished), CRK_OK);
                        assert_eq!(crk_made_trainer_report(trainer.get(), &mut r), CRK_OK);
                        assert_eq!(crk_made_trainer_model(trainer.get(), &mut made), CRK_OK);
                        model_bits(made, &context, &x)
                    };
                    assert_eq!(last_message(), "");
                    assert!(
                        r.epochs_run >= seen && r.epochs_run <= 6,
                        "epochs {} after {seen}",
                        r.epochs_run
                    );
                    assert!(r.epochs_run == 0 || (r.best_epoch >= 1 && r.best_epoch <= r.epochs_run));
                    assert!(r.epochs_run == 0 || r.final_train_nll.is_finite());
                    seen = r.epochs_run;
                    if finished == 1 {
                        assert_eq!(seen, 6);
                        // Its kept model may be an earlier epoch's: the last check is below.
                        assert_eq!(bits.len(), TRAIN_ROWS);
                        break;
                    }
                    std::thread::yield_now();
                }
            });
        }
    });
    let mut made = null_mut();
    // SAFETY: live handle; out writable; the trainer is not used afterwards.
    let got = unsafe {
        assert_eq!(crk_made_trainer_model(trainer.get(), &mut made), CRK_OK);
        crk_made_trainer_free(trainer.get());
        model_bits(made, &context, &x)
    };
    assert_eq!(got, want, "the shared trainer's model differs from crk_made_train's");

    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let o = train_options(1);
                let mut out = null_mut();
                let mut r = sentinel_report();
                let mut t = null_mut();
                // SAFETY: data as above; outs writable; the trainer is freed here.
                unsafe {
                    let s = crk_made_train(
                        context.as_ptr(),
                        1,
                        x.as_ptr(),
                        2,
                        TRAIN_ROWS,
                        &o,
                        Some(cancel_at_once),
                        null_mut(),
                        &mut out,
                        &mut r,
                    );
                    assert_eq!(s, CRK_ERR_CANCELLED);
                    assert!(out.is_null() && r.epochs_run == usize::MAX, "a cancelled run wrote its outputs");
                    assert!(
                        last_message().contains("training cancelled by the progress callback"),
                        "{}",
                        last_message()
                    );
                    assert_eq!(
                        crk_made_trainer_new(context.as_ptr(), 1, x.as_ptr(), 2, TRAIN_ROWS, &o, &mut t),
                        CRK_OK
                    );
                    let s = crk_made_trainer_epoch(t, Some(cancel_at_once), null_mut(), null_mut());
                    assert_eq!(s, CRK_ERR_CANCELLED);
                    assert!(
                        last_message().contains("training cancelled by the progress callback"),
                        "{}",
                        last_message()
                    );
                    crk_made_trainer_free(t);
                }
            });
        }
    });
}

/// Every thread makes handles of each kind, uses them and frees them, many times, at once:
/// construction and destruction are thread-safe too (and nothing is shared by accident).
#[test]
fn handles_made_and_freed_on_many_threads() {
    let (x, y) = surrogate_data();
    let energy = log_grid(8, 200.0, 5e3);
    let reference = |x: &[f64], y: &[f64]| -> Vec<u64> {
        let mut bits = Vec::new();
        // SAFETY: valid arguments; every handle is freed before returning.
        unsafe {
            let (mut l, mut t, mut e, mut m, mut n, mut s) =
                (null_mut(), null_mut(), null_mut(), null_mut(), null_mut(), null_mut());
            let params = crk_ensemble_params {
                sn_rate_per_Myr: 1e3,
                t_max_Myr: 2.0,
                s_max_kpc: 3.0,
                spatial: CRK_SPATIAL_UNIFORM_DISC,
                poisson_count: 1,
                spectrum: crk_source_spectrum { q_star_per_GeV: 1e50, gamma: 2.0, cutoff_GeV: 1e4 },
            };
            assert_eq!(crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &mut l), CRK_OK);
            assert_eq!(crk_transport_new(l, 3e28, 0.6, 4.0, 100.0, 1e5, &mut t), CRK_OK);
            assert_eq!(crk_ensemble_new(t, &params, energy.as_ptr(), energy.len(), &mut e), CRK_OK);
            let mut flux = vec![0.0; 2 * energy.len()];
            assert_eq!(crk_ensemble_run(e, 3, 0, 2, 1, flux.as_mut_ptr(), None, null_mut()), CRK_OK);
            bits.extend(f64_bits(&flux));
            assert_eq!(crk_made_load(path(MADE_MODEL).as_ptr(), &mut m), CRK_OK);
            let mut dims = [0usize; 3];
            assert_eq!(crk_made_dims(m, &mut dims[0], &mut dims[1], &mut dims[2]), CRK_OK);
            let context = vec![0.25f32; 4 * dims[0]];
            let mut sample = vec![0.0f32; 4 * dims[1]];
            assert_eq!(crk_made_sample(m, context.as_ptr(), 4, 11, 1, sample.as_mut_ptr()), CRK_OK);
            bits.extend(f32_bits(&sample));
            assert_eq!(crk_network_load(path(NETWORK).as_ptr(), &mut n), CRK_OK);
            let mut size = 0;
            assert_eq!(crk_network_output_size(n, &mut size), CRK_OK);
            bits.push(size as u64);
            let (tc, tx) = train_data();
            let o = train_options(1);
            let (mut tr, mut tm) = (null_mut(), null_mut());
            assert_eq!(crk_made_trainer_new(tc.as_ptr(), 1, tx.as_ptr(), 2, TRAIN_ROWS, &o, &mut tr), CRK_OK);
            assert_eq!(crk_made_trainer_epoch(tr, None, null_mut(), null_mut()), CRK_OK);
            assert_eq!(crk_made_trainer_model(tr, &mut tm), CRK_OK);
            crk_made_trainer_free(tr);
            bits.extend(model_bits(tm, &tc, &tx));
            assert_eq!(fit_surrogate(x, y, &mut s), CRK_OK);
            let mut g = [0.0; 2];
            assert_eq!(crk_surrogate_gradient(s, [0.2, 0.4].as_ptr(), g.as_mut_ptr()), CRK_OK);
            bits.extend(f64_bits(&g));
            assert_eq!(last_message(), "");
            crk_surrogate_free(s);
            crk_network_free(n);
            crk_made_free(m);
            crk_ensemble_free(e);
            crk_transport_free(t);
            crk_losses_free(l);
            // NULL is a no-op for every free function.
            crk_made_trainer_free(null_mut());
            crk_surrogate_free(null_mut());
            crk_network_free(null_mut());
            crk_made_free(null_mut());
            crk_ensemble_free(null_mut());
            crk_transport_free(null_mut());
            crk_losses_free(null_mut());
        }
        bits
    };
    let want = reference(&x, &y);
    let rounds = if stress_seconds() > 0.5 { 3 } else { 1 };
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..rounds {
                    assert_eq!(reference(&x, &y), want);
                }
            });
        }
    });
}
