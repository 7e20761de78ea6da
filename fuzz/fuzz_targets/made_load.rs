//! libFuzzer target: bytes as a MADE model file through crk_made_load_buffer_with_options,
//! checked by tests/loader_support (allocation bound, refusals with a message, a loaded model
//! runs). Run by scripts/fuzz-loaders.sh.
#![no_main]

#[path = "../../tests/alloc_support/mod.rs"]
mod alloc_support;
#[path = "../../tests/loader_support/mod.rs"]
mod loader_support;

use std::sync::atomic::{AtomicUsize, Ordering};

use alloc_support::CountingAllocator;
use crkernels::ffi::made::crk_made_load_options;
use libfuzzer_sys::fuzz_target;
use loader_support::{Outcome, exercise_made};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

static CASES: AtomicUsize = AtomicUsize::new(0);
static LOADED: AtomicUsize = AtomicUsize::new(0);

fuzz_target!(|bytes: &[u8]| {
    // The nflows settings, from the last byte: none (the file's), or explicit (some invalid).
    let options = match bytes.last().map_or(0, |b| b % 8) {
        5 => Some(crk_made_load_options { activation: 1, epsilon: 1e-3, sbi_dummy_input: 1 }),
        6 => Some(crk_made_load_options { activation: 2, epsilon: 0.0, sbi_dummy_input: 0 }),
        7 => Some(crk_made_load_options { activation: 9, epsilon: -1.0, sbi_dummy_input: 3 }),
        _ => None,
    };
    if exercise_made(bytes, options.as_ref()) == Outcome::Loaded {
        LOADED.fetch_add(1, Ordering::Relaxed);
    }
    let cases = CASES.fetch_add(1, Ordering::Relaxed) + 1;
    if cases.is_multiple_of(100_000) {
        let loaded = LOADED.load(Ordering::Relaxed);
        eprintln!("made_load: {cases} cases, {loaded} loaded and ran, {} refused", cases - loaded);
    }
});
