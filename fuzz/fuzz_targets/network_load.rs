//! libFuzzer target: bytes as a network file through crk_network_load_buffer, checked by
//! tests/loader_support (allocation bound, refusals with a message, a loaded network runs).
//! Run by scripts/fuzz-loaders.sh.
#![no_main]

#[path = "../../tests/alloc_support/mod.rs"]
mod alloc_support;
#[path = "../../tests/loader_support/mod.rs"]
mod loader_support;

use std::sync::atomic::{AtomicUsize, Ordering};

use alloc_support::CountingAllocator;
use libfuzzer_sys::fuzz_target;
use loader_support::{Outcome, exercise_network};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

static CASES: AtomicUsize = AtomicUsize::new(0);
static OUTCOMES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

fuzz_target!(|bytes: &[u8]| {
    match exercise_network(bytes) {
        Outcome::Refused => {}
        Outcome::Loaded => _ = OUTCOMES[0].fetch_add(1, Ordering::Relaxed),
        Outcome::LoadedTooLargeToRun => _ = OUTCOMES[1].fetch_add(1, Ordering::Relaxed),
    }
    let cases = CASES.fetch_add(1, Ordering::Relaxed) + 1;
    if cases.is_multiple_of(100_000) {
        let [ran, large] = [&OUTCOMES[0], &OUTCOMES[1]].map(|c| c.load(Ordering::Relaxed));
        eprintln!(
            "network_load: {cases} cases, {ran} loaded and ran, {large} loaded (too large to run here), {} refused",
            cases - ran - large
        );
    }
});
