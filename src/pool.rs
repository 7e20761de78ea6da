//! A persistent pool of worker threads for the batch splits of the std entry points.
//!
//! Creating a thread per call cost 35 to 50 us on the 2-core test machine, 4% of a 1.4 ms
//! conv2d on two threads; a parked worker is woken in a few microseconds. The workers are
//! started on first use, as many as the largest thread count asked for (up to twice the
//! cores), and live as long as the process. One call uses the pool at a time: a call made while another is running (from
//! another thread of the caller's program), or in a child process after a fork, runs on
//! threads of its own instead.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

/// The job of the current call, its lifetime erased: [`run`] waits until no worker uses it
/// before it returns, so the borrow it was made from outlives every use.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn() + Sync + 'static));

// SAFETY: the pointee is Sync (shared calls from several threads are fine) and outlives its
// uses (see Job).
unsafe impl Send for Job {}

struct State {
    job: Option<Job>,
    /// Bumped for every job.
    generation: u64,
    /// Workers the current job asks for, and how many have taken it.
    wanted: usize,
    started: usize,
    /// Workers still running the current job.
    running: usize,
    /// Workers alive.
    workers: usize,
    /// The first panic of a worker in the current job.
    panic: Option<Box<dyn Any + Send>>,
}

struct Pool {
    /// Held by the call that uses the pool.
    owner: Mutex<()>,
    /// `State::generation` and `State::running`, readable without the lock: a worker that
    /// has just finished, and a caller whose share is done, spin on them for a while before
    /// they sleep (waking a sleeping thread costs tens of microseconds on a busy machine).
    generation_hint: AtomicU64,
    running_hint: AtomicUsize,
    state: Mutex<State>,
    /// Workers wait here for a job.
    wake: Condvar,
    /// The calling thread waits here for the workers to finish.
    finished: Condvar,
    /// The process that started the workers.
    process: u32,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `job` on `threads` threads at once, the calling thread one of them, and returns when
/// every run has returned (a panic in any is resumed here). `job` splits the work itself
/// (typically by taking pieces from a shared queue).
pub(crate) fn run(threads: usize, job: &(dyn Fn() + Sync)) {
    if threads <= 1 {
        return job();
    }
    let pool = POOL.get_or_init(|| Pool {
        owner: Mutex::new(()),
        generation_hint: AtomicU64::new(0),
        running_hint: AtomicUsize::new(0),
        state: Mutex::new(State {
            job: None,
            generation: 0,
            wanted: 0,
            started: 0,
            running: 0,
            workers: 0,
            panic: None,
        }),
        wake: Condvar::new(),
        finished: Condvar::new(),
        process: std::process::id(),
    });
    // Persistent workers for up to twice the cores; a call asking for more threads than that
    // gets threads of its own (they would only compete for the cores and then linger).
    let cap = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let owner = match pool.owner.try_lock() {
        _ if threads > cap.max(2) || pool.process != std::process::id() => return run_scoped(threads, job),
        Ok(guard) => guard,
        // A panic in an earlier call poisoned the lock: the pool's state was reset after it.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return run_scoped(threads, job),
    };
    {
        let mut state = lock(&pool.state);
        while state.workers < threads - 1 {
            let spawned = std::thread::Builder::new().name("crkernels-worker".into()).spawn(|| worker(pool));
            if spawned.is_err() {
                break;
            }
            state.workers += 1;
        }
        let helpers = (threads - 1).min(state.workers);
        // SAFETY: only the lifetime is erased; this function waits below until `running` is 0,
        // i.e. until no worker holds the pointer, and clears it, before `job` can go away.
        let erased: *const (dyn Fn() + Sync + 'static) =
            unsafe { std::mem::transmute(job as *const (dyn Fn() + Sync)) };
        state.job = Some(Job(erased));
        state.generation += 1;
        state.wanted = helpers;
        state.started = 0;
        state.running = helpers;
        pool.running_hint.store(helpers, Ordering::Release);
        pool.generation_hint.store(state.generation, Ordering::Release);
        pool.wake.notify_all();
    }
    let mine = catch_unwind(AssertUnwindSafe(job));
    spin_while(|| pool.running_hint.load(Ordering::Acquire) > 0);
    let mut state = lock(&pool.state);
    while state.running > 0 {
        state = pool.finished.wait(state).unwrap_or_else(PoisonError::into_inner);
    }
    state.job = None;
    let theirs = state.panic.take();
    drop(state);
    drop(owner);
    if let Err(payload) = mine {
        resume_unwind(payload);
    }
    if let Some(payload) = theirs {
        resume_unwind(payload);
    }
}

/// Spins while `busy` holds, for at most SPIN_ROUNDS checks (about 50 to 100 us).
fn spin_while(busy: impl Fn() -> bool) {
    const SPIN_ROUNDS: usize = 20_000;
    for _ in 0..SPIN_ROUNDS {
        if !busy() {
            return;
        }
        std::hint::spin_loop();
    }
}

/// A worker: waits for a job it is wanted for, runs it, reports, and waits again.
fn worker(pool: &'static Pool) {
    let mut seen = 0;
    loop {
        spin_while(|| pool.generation_hint.load(Ordering::Acquire) == seen);
        let job = {
            let mut state = lock(&pool.state);
            loop {
                if state.generation != seen {
                    seen = state.generation;
                    if state.started < state.wanted
                        && let Some(job) = state.job
                    {
                        state.started += 1;
                        break job;
                    }
                }
                state = pool.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        // SAFETY: `run` keeps the job alive until this worker has decremented `running`.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)() }));
        let mut state = lock(&pool.state);
        if let Err(payload) = result {
            state.panic.get_or_insert(payload);
        }
        state.running -= 1;
        pool.running_hint.store(state.running, Ordering::Release);
        if state.running == 0 {
            pool.finished.notify_all();
        }
    }
}

/// [`run`] on threads created for this call.
fn run_scoped(threads: usize, job: &(dyn Fn() + Sync)) {
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(job)).collect();
        job();
        for helper in helpers {
            if let Err(payload) = helper.join() {
                resume_unwind(payload);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread runs the job once per call; calls from several threads at once (some of
    /// them on their own threads) all complete; a panic reaches the caller and the pool still
    /// works afterwards.
    #[test]
    fn jobs_run_on_the_asked_threads() {
        for threads in [1, 2, 3, 5] {
            let count = AtomicUsize::new(0);
            run(threads, &|| {
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(count.load(Ordering::Relaxed), threads);
        }
        let total = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        run(3, &|| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 50 * 3);
        let calls = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run(2, &|| {
                if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                    panic!("one run panics");
                }
            })
        }));
        assert!(outcome.is_err());
        let after = AtomicUsize::new(0);
        run(2, &|| {
            after.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(after.load(Ordering::Relaxed), 2);
    }
}
