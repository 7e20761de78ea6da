#!/usr/bin/env bash
# aarch64 under emulation (issue 18; README.md, "aarch64"): builds the library and tests for
# aarch64-unknown-linux-gnu with Debian's cross compilers, checks that x86-64 and aarch64 give
# the same results bit for bit (examples/bit_identity.rs, natively under x86-64's default set
# and its baseline, and under qemu-aarch64 with NEON and with aarch64's baseline lane loops),
# and runs a subset of the test suite under qemu-user, the C ABI tests included.
#
#   bash scripts/test-aarch64.sh            # all of it
#   bash scripts/test-aarch64.sh --bits     # only the bit-identity check
#
# Installs what is missing (qemu-user, gcc/g++/gfortran-aarch64-linux-gnu, the arm64 libc, the
# Rust target). The linker and the runner are in .cargo/config.toml. The subset under qemu
# (a full `cargo test --target aarch64-unknown-linux-gnu` takes far longer under emulation):
# the core's unit tests (38 s under qemu); tests/c_abi.rs (C, C++ and Fortran programs
# cross-compiled and run under qemu; 230 s, with its own build of the library); the ensemble,
# losses, transport, rng, MADE, convolution and network tests, with the MADE and network
# outputs compared bit for bit between aarch64's neon and baseline sets. Left out for time: the
# re-runs of the equivalence tests under every CRKERNELS_ISA (that would double them),
# tests/sources.rs (100 s; the source draws are in the bit-identity check through the
# flagship's realisations) and the rest of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
need() { command -v "$1" >/dev/null 2>&1; }

if ! need qemu-aarch64 || ! need aarch64-linux-gnu-gcc || ! need aarch64-linux-gnu-g++ \
    || ! need aarch64-linux-gnu-gfortran || [ ! -e "$SYSROOT/lib/libc.so.6" ]; then
    echo "installing qemu-user and the aarch64 cross compilers"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu \
        gfortran-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

target_dir=${CARGO_TARGET_DIR:-target}
out="$target_dir/aarch64-check"
mkdir -p "$out"

echo "--- bit identity: examples/bit_identity.rs on x86-64 and on aarch64 (qemu)"
start=$SECONDS
cargo build --release --example bit_identity
cargo build --release --target "$TARGET" --example bit_identity
native="$target_dir/release/examples/bit_identity"
arm="$target_dir/$TARGET/release/examples/bit_identity"
# Every value, the f32 network kernels' included, is the same on every instruction set:
# aarch64 (NEON, and its baseline lane loops) must equal x86-64's default set (AVX2 or AVX-512)
# and x86-64's baseline (SSE2, software fmaf).
"$native" "$out/x86_64.txt"
CRKERNELS_ISA=baseline "$native" "$out/x86_64_baseline.txt"
# x86-64 with glibc's non-FMA math variants (as on CPUs without FMA): libm makes it irrelevant.
GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA CRKERNELS_ISA=baseline "$native" "$out/x86_64_no_fma.txt"
qemu-aarch64 -L "$SYSROOT" "$arm" "$out/aarch64.txt"
CRKERNELS_ISA=baseline qemu-aarch64 -L "$SYSROOT" "$arm" "$out/aarch64_baseline.txt"
status=0
for other in x86_64_baseline x86_64_no_fma aarch64 aarch64_baseline; do
    if cmp -s "$out/x86_64.txt" "$out/$other.txt"; then
        echo "x86-64 (default set) and $other: $(wc -l <"$out/x86_64.txt") values, bit-identical"
    else
        echo "x86-64 and $other differ in $(diff "$out/x86_64.txt" "$out/$other.txt" | grep -c '^<') values:" >&2
        diff "$out/x86_64.txt" "$out/$other.txt" | grep '^<' | awk '{print $2}' | sort | uniq -c >&2
        status=1
    fi
done
[ "$status" -eq 0 ] || exit 1
echo "bit identity: $((SECONDS - start)) s"
[ "${1:-}" = "--bits" ] && exit 0

echo "--- tests under qemu-aarch64"
start=$SECONDS
cargo test --release --target "$TARGET" -p crkernels-core --lib
cargo test --release --target "$TARGET" \
    --test c_abi --test ensemble --test losses --test transport --test rng \
    --test made --test conv --test network \
    -- --skip equivalence_tests_pass_under_every_instruction_set
echo "tests under qemu: $((SECONDS - start)) s"
