#!/usr/bin/env bash
# GPU checks (issue 7): equivalence tests and benchmarks of the CUDA kernels.
#
#   scripts/gpu-check.sh build   on a machine with Rust: builds the GPU test and benchmark
#                                binaries (feature `cuda`) into target/gpu/
#   scripts/gpu-check.sh run     on the GPU machine, from the repository root (no Rust needed,
#                                only the NVIDIA driver): runs them and prints a short table
#   scripts/gpu-check.sh         both, on a GPU machine with Rust
#
# The binaries load the driver at run time; tests read tests/data/ relative to the root.
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS="ensemble_gpu gpu_made gpu_conv"
BENCHES="gpu_ensemble gpu_made gpu_conv"
# crk's tests of `crk grid --device` (the crk tool built with its `cuda` feature beside them).
CRK_TESTS="grid"

build() {
    mkdir -p target/gpu
    for t in $TESTS; do
        exe=$(cargo test --release --features cuda --test "$t" --no-run --message-format=json 2>/dev/null \
            | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
        strip -o "target/gpu/test_$t" "$exe"
    done
    for b in $BENCHES; do
        exe=$(cargo bench --features cuda --bench "$b" --no-run --message-format=json 2>/dev/null \
            | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
        strip -o "target/gpu/bench_$b" "$exe"
    done
    for t in $CRK_TESTS; do
        exe=$(cargo test --release -p crk --features cuda --test "$t" --no-run --message-format=json 2>/dev/null \
            | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
        strip -o "target/gpu/test_crk_$t" "$exe"
    done
    cargo build --release -p crk --features cuda
    strip -o target/gpu/crk target/release/crk
    ls -l target/gpu
}

run() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    local summary="" status=0
    for t in $TESTS; do
        echo; echo "=== test $t"
        if "target/gpu/test_$t" --test-threads=1 --nocapture; then summary+="test $t: passed"$'\n'
        else summary+="test $t: FAILED"$'\n'; status=1; fi
    done
    for t in $CRK_TESTS; do
        echo; echo "=== test crk $t (--device)"
        if CRK_BIN=target/gpu/crk "target/gpu/test_crk_$t" --test-threads=1 --nocapture device; then
            summary+="test crk $t: passed"$'\n'
        else summary+="test crk $t: FAILED"$'\n'; status=1; fi
    done
    for b in $BENCHES; do
        echo; echo "=== bench $b"
        "target/gpu/bench_$b" --bench || { summary+="bench $b: FAILED"$'\n'; status=1; }
    done
    echo; echo "=== summary"; printf '%s' "$summary"
    return $status
}

case "${1:-all}" in
    build) build ;;
    run) run ;;
    all) build && run ;;
    *) echo "usage: $0 [build|run]" >&2; exit 2 ;;
esac
