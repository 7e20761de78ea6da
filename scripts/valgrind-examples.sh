#!/usr/bin/env bash
# Runs the C, C++ and Fortran examples and test programs that `cargo test --release --test
# c_abi` built (in target/tmp/) under valgrind's leak checker. Fails on any definite leak or
# memory error. Two "possibly lost" blocks are not ours and are not counted: Rust std's handle
# of the calling thread (48 bytes, made the first time std::thread::scope runs on a foreign
# thread) and libgomp's thread-local storage of the OpenMP pool (320 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."
# Optional tools follow the tests' rule (tests/tool_support/mod.rs): where one is missing this
# is skipped with one line, or fails under CRKERNELS_REQUIRE_ALL=1 (as .ci/run sets).
skip_or_fail() {  # what is missing, how to install it
    if [ -n "${CRKERNELS_REQUIRE_ALL:-}" ] && [ "$CRKERNELS_REQUIRE_ALL" != 0 ]; then
        echo "$0: $1, and CRKERNELS_REQUIRE_ALL is set: $2" >&2; exit 1
    fi
    echo "skipping $0: $1 (set CRKERNELS_REQUIRE_ALL=1 to make this an error)" >&2; exit 0
}
command -v valgrind >/dev/null || skip_or_fail "valgrind not found" "sudo apt-get install -y valgrind"
status=0
for exe in target/tmp/c_examples/* target/tmp/cpp_examples/* target/tmp/cpp_tests/* target/tmp/fortran/* \
           target/tmp/c_tests/*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    case "$exe" in *error_stop*) continue ;; esac  # stops on purpose with an error
    if valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 "$exe" >/dev/null 2>/tmp/valgrind.$$; then
        echo "valgrind: $exe: clean"
    else
        echo "valgrind: $exe: FAILED"; cat /tmp/valgrind.$$; status=1
    fi
done
rm -f /tmp/valgrind.$$
exit $status
