#!/usr/bin/env bash
# Coverage-guided fuzzing of the model-file loaders (issue 15): cargo fuzz (libFuzzer with
# AddressSanitizer, nightly Rust) on fuzz/fuzz_targets/made_load.rs (crk_made_load_buffer_with_options)
# and fuzz/fuzz_targets/network_load.rs (crk_network_load_buffer), seeded with the test models
# of tests/data up to 64 KiB. Each case is checked by tests/loader_support/mod.rs: loading
# allocates at most 64 x the file size + 1 MiB, a refusal has a status and a message, a model
# that loads runs on a few rows (log-densities, samples, conditional samples; network runs),
# nothing panics. libFuzzer adds: no crash or sanitizer report, no case over 10 s (a hang), no
# single allocation over 512 MiB, RSS under 2 GiB.
#
# Usage: scripts/fuzz-loaders.sh [RUNS [TARGETS]]   (executions per target, default 1000000;
# TARGETS default "made_load network_load", run side by side, one core each). Installs nightly
# and cargo-fuzz if missing. LeakSanitizer stays on, with one suppression (fuzz/lsan.supp):
# glibc's 32-byte record of a thread-local destructor, registered the first time an input
# reaches a thread-local and freed when the thread exits, which LSan takes for a leak.
# Logs in fuzz/logs/, the grown corpus in fuzz/corpus/ (kept between runs), crashing inputs in
# fuzz/artifacts/. Exits non-zero if a target found anything.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1000000}
TARGETS=${2:-made_load network_load}
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

seed() {  # seed TARGET FILES...: the seed corpus of TARGET (files up to 64 KiB)
    local dir="fuzz/seeds/$1"; shift
    rm -rf "$dir"; mkdir -p "$dir"
    find "$@" -maxdepth 0 -size -65537c -exec cp {} "$dir/" \;
}
seed made_load tests/data/made/*.safetensors
seed network_load tests/data/conv/net_small_*.safetensors tests/data/conv/bad_net_*.safetensors

cargo +nightly fuzz build -O
mkdir -p fuzz/logs
status=0
for target in $TARGETS; do
    rm -rf "fuzz/artifacts/$target"
    mkdir -p "fuzz/corpus/$target"
    ( start=$(date +%s) rc=0
      cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
          -runs="$RUNS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
          -print_final_stats=1 >"fuzz/logs/$target.log" 2>&1 || rc=$?
      echo "wall_seconds: $(( $(date +%s) - start ))" >>"fuzz/logs/$target.log"
      exit $rc ) &
done
for job in $(jobs -p); do wait "$job" || status=1; done

echo "=== fuzz-loaders: $RUNS executions per target ($(grep -o -m1 'avx512f' /proc/cpuinfo || echo 'no AVX-512'), $(nproc) cores)"
for target in $TARGETS; do
    log="fuzz/logs/$target.log"
    echo "--- $target"
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' "$log" || true
    grep -E "^$target: [0-9]+ cases" "$log" | tail -1 || true
    grep -E '^(Done|#[0-9]+ +DONE)' "$log" | tail -1 || true
    tail -1 "$log"
    crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "crash, timeout and oom artifacts: $crashes"
    [ "$crashes" -eq 0 ] || status=1
done
exit $status
