//! Times the ridge-surrogate step of issue 18 (p = 18, n = 5000, degrees 1..=3, 10 alphas,
//! distance weights; the problem of benches/fit.rs) on the thread counts given (default 1 2):
//! best wall time of 5 and, on Linux, the process CPU time of that run (on a shared machine
//! the wall clock is time-sliced; the CPU time is the work).
//!
//! cargo run --release --example surrogate_timing -- 1 2

use std::time::Instant;

use crkernels::rng::Stream;
use crkernels::stats::surrogate::{Surrogate, SurrogateOptions, Weighting};

/// The process's CPU time [s] (Linux), None elsewhere.
fn cpu_seconds() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            seconds: i64,
            nanoseconds: i64,
        }
        unsafe extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
        let mut t = Timespec { seconds: 0, nanoseconds: 0 };
        // SAFETY: t is a valid timespec to write.
        let status = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
        (status == 0).then_some(t.seconds as f64 + t.nanoseconds as f64 * 1e-9)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn main() {
    const P: usize = 18;
    let n = 5000;
    let mut rng = Stream::new(7, 0);
    let (mut x, mut y) = (Vec::with_capacity(n * P), Vec::with_capacity(n));
    for _ in 0..n {
        let xi: Vec<f64> = (0..P).map(|_| rng.normal()).collect();
        let nll = 40.0
            + (0..P)
                .map(|j| {
                    let d = xi[j] - 0.3 * (j as f64 * 0.7).sin();
                    0.5 * (1.0 + 0.1 * j as f64) * d * d + 0.05 * d * d * d
                })
                .sum::<f64>();
        y.push(nll + 0.01 * rng.normal());
        x.extend(xi.iter().enumerate().map(|(j, v)| 10f64.powi(j as i32 % 5 - 2) * (1.0 + 0.1 * v)));
    }
    let degrees = [1, 2, 3];
    let alphas: Vec<f64> = (0..10).map(|k| 10f64.powf(-6.0 + 8.0 * k as f64 / 9.0)).collect();
    let options =
        SurrogateOptions { weighting: Weighting::Distance, start: None, degrees: &degrees, alphas: &alphas };
    let mut threads: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if threads.is_empty() {
        threads = vec![1, 2];
    }
    for t in threads {
        let (mut best, mut best_cpu) = (f64::INFINITY, None);
        for _ in 0..5 {
            let (start, cpu_start) = (Instant::now(), cpu_seconds());
            let step = Surrogate::fit_threads(&x, P, &y, &options, t).and_then(|s| s.step(1.0));
            let wall = start.elapsed().as_secs_f64();
            std::hint::black_box(step.expect("the surrogate step"));
            if wall < best {
                best = wall;
                best_cpu = cpu_seconds().zip(cpu_start).map(|(end, begin)| end - begin);
            }
        }
        match best_cpu {
            Some(cpu) => println!("{t} threads: best {best:.4} s (CPU {cpu:.4} s)"),
            None => println!("{t} threads: best {best:.4} s"),
        }
    }
}
