#!/usr/bin/env bash
# Issue 15 (4): the checks that need a nightly toolchain.
#   1. Miri: the tests that exercise the unsafe code of the C ABI and the core (tests/miri_ffi.rs,
#      the FFI helpers' and the worker pool's unit tests, the core's unit tests of its unchecked
#      kernels) with no undefined behaviour and no data race; tests/miri_ffi.rs also in builds
#      with AVX2 + FMA and with AVX-512 enabled, to run the vector kernels.
#   2. ThreadSanitizer: the stress test tests/concurrency.rs (8 threads sharing every kind of
#      handle) with std rebuilt instrumented, no race reported.
# Installs what it needs (a nightly toolchain with miri and rust-src, through rustup), prints
# a summary with the time of each part, and exits non-zero if either fails.
# Usage: scripts/nightly-checks.sh [miri|tsan]   (default: both)
# Builds go to target/miri and target/tsan (their own locks: they do not wait for target/).
set -uo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in all | miri | tsan) ;; *)
    echo "usage: $0 [miri|tsan]" >&2
    exit 2
    ;;
esac

if ! command -v rustup >/dev/null 2>&1; then
    echo "rustup is needed to install the nightly toolchain" >&2
    exit 1
fi
# The newest nightly that has both components (--allow-downgrade: miri is sometimes missing
# from the latest one). An installed nightly is used as it is.
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri' ||
    ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "installing the nightly toolchain with miri and rust-src"
    rustup toolchain install nightly --profile minimal --component miri,rust-src --allow-downgrade ||
        exit 1
fi
host=$(rustc +nightly -vV | sed -n 's/^host: //p')

status_miri="skipped"
status_tsan="skipped"
time_miri=0
time_tsan=0

run_miri() {
    echo
    echo "=== Miri ($(cargo +nightly miri --version 2>/dev/null), $(rustc +nightly --version))"
    cargo +nightly miri setup >/dev/null || return 1
    # Miri gives transcendental functions (exp, ln, sin) a random error of a few ulps to model
    # other platforms' libm; the tests compare bits between thread counts, so ask for its
    # deterministic floats. The worker pool's threads live as long as the process by design
    # (src/pool.rs): Miri would call them leaked at exit, so its leak check is off (valgrind
    # checks leaks in CI). Isolation stays on: the tests read no files.
    export MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-deterministic-floats -Zmiri-ignore-leaks"
    cargo +nightly miri test --target-dir target/miri --test miri_ffi &&
        cargo +nightly miri test --target-dir target/miri --lib -- \
            ffi::tests pool::tests &&
        cargo +nightly miri test --target-dir target/miri -p crkernels-core --lib -- \
            nn::gemm::tests nn::pool::tests nn::linear::tests nn::activation::tests || return 1
    # Miri reports no CPU feature the build does not enable, so the runs above take the
    # portable paths. The AVX2 and AVX-512 kernels (target_feature copies and intrinsics) run
    # when the build enables them: tests/miri_ffi again, once per instruction set (each its own
    # target directory: other flags rebuild everything). CRK_MIRI_SIMD=0 skips them.
    if [ "${CRK_MIRI_SIMD:-1}" != 0 ]; then
        RUSTFLAGS="-Ctarget-feature=+avx2,+fma" \
            cargo +nightly miri test --target-dir target/miri-avx2 --test miri_ffi &&
            RUSTFLAGS="-Ctarget-feature=+avx2,+fma,+avx512f,+avx512dq" \
                cargo +nightly miri test --target-dir target/miri-avx512 --test miri_ffi
    fi
}

run_tsan() {
    echo
    echo "=== ThreadSanitizer ($(rustc +nightly --version), target $host)"
    # halt_on_error: the first report fails the run. The stress test runs for
    # CRK_STRESS_SECONDS (10 here) after one full pass on each thread (~3 s instrumented).
    RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" CRK_STRESS_SECONDS="${CRK_STRESS_SECONDS:-10}" \
        cargo +nightly test -Zbuild-std --target "$host" --release --target-dir target/tsan \
        --test concurrency -- --nocapture
}

if [ "$what" = all ] || [ "$what" = miri ]; then
    start=$SECONDS
    if run_miri; then status_miri="passed (no undefined behaviour, no data race)"; else status_miri="FAILED"; fi
    time_miri=$((SECONDS - start))
fi
if [ "$what" = all ] || [ "$what" = tsan ]; then
    start=$SECONDS
    if run_tsan; then status_tsan="passed (no race reported)"; else status_tsan="FAILED"; fi
    time_tsan=$((SECONDS - start))
fi

echo
echo "=== nightly checks: summary"
printf '  %-16s %-48s %4d s\n' "Miri" "$status_miri" "$time_miri"
printf '  %-16s %-48s %4d s\n' "ThreadSanitizer" "$status_tsan" "$time_tsan"
case "$status_miri$status_tsan" in *FAILED*) exit 1 ;; esac
exit 0
