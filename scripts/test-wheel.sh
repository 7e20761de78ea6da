#!/usr/bin/env bash
# The Python package as a user gets it from pip, tested where Rust is absent:
#  1. `pip wheel --no-deps ./bindings/python` in a fresh virtual environment (pip's default
#     build isolation: setuptools-rust from PyPI builds libcrkernels and crk into the wheel);
#  2. that wheel installed into another fresh virtual environment, and the Python tests run
#     against the install with cargo and rustc off PATH and CRKERNELS_LIB / CRKERNELS_CRK
#     unset, so that the bundled library and crk are what load (tests/test_installed.py);
#  3. the same for `pip install ./bindings/python` into a fresh virtual environment.
#   bash scripts/test-wheel.sh [extra pytest arguments]
# Environment: PYTHON (default python3); CARGO_TARGET_DIR (default: the checkout's target/,
# shared with `cargo build --release`, so that nothing is built twice); KEEP_WHEEL=DIR copies
# the wheel there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}

skip_or_fail() {  # what is missing, how to install it (as scripts/test-python.sh)
    if [ -n "${CRKERNELS_REQUIRE_ALL:-}" ] && [ "$CRKERNELS_REQUIRE_ALL" != 0 ]; then
        echo "$0: $1, and CRKERNELS_REQUIRE_ALL is set: $2" >&2; exit 1
    fi
    echo "skipping $0: $1 (set CRKERNELS_REQUIRE_ALL=1 to make this an error)" >&2; exit 0
}
if ! { "$PYTHON" -m venv --help && "$PYTHON" -c "import ensurepip"; } >/dev/null 2>&1; then
    skip_or_fail "$PYTHON cannot make a virtual environment (no venv/ensurepip)" \
        "sudo apt-get install -y python3-venv"
fi
command -v cargo >/dev/null || { echo "$0: building the package needs cargo on PATH" >&2; exit 1; }
# The interpreter itself, not a shim that needs PATH (pyenv).
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# With the CLI crate in the checkout, crk must build and the pipeline tests must run.
if [ -f cli/Cargo.toml ]; then
    export CRKERNELS_BUILD_CRK=1
    REQUIRE_CRK=1
else
    REQUIRE_CRK=0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crkernels-wheel.XXXXXX")
clean_build() { rm -rf bindings/python/build bindings/python/crkernels.egg-info; }
trap 'rm -rf "$WORK"; clean_build' EXIT
PIP_QUIET=(--quiet --disable-pip-version-check)

# PATH without cargo and rustc (~/.cargo/bin and any other directory that has them).
NORUST_PATH=""
IFS=: read -r -a path_dirs <<< "$PATH"
for d in "${path_dirs[@]}"; do
    [ -z "$d" ] && continue
    if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ "$d" = "$HOME/.cargo/bin" ]; then continue; fi
    NORUST_PATH=${NORUST_PATH:+$NORUST_PATH:}$d
done

# Runs the tests against the package installed in venv $1 (from outside the source tree, so
# that the installed package is the one imported), without Rust and without the overrides.
test_install() {  # venv, what it is
    local venv=$1 what=$2
    echo "--- tests against $what (no cargo/rustc on PATH, CRKERNELS_LIB unset)"
    (
        cd "$WORK"
        unset CRKERNELS_LIB CRKERNELS_CRK CARGO_TARGET_DIR RUSTUP_TOOLCHAIN
        export PATH="$venv/bin:$NORUST_PATH" CRKERNELS_TEST_INSTALLED=1 \
            CRKERNELS_REQUIRE_CRK=$REQUIRE_CRK
        if command -v cargo >/dev/null || command -v rustc >/dev/null; then
            echo "$0: cargo or rustc still on PATH: $PATH" >&2; exit 1
        fi
        python -c "import crkernels; print('loaded', crkernels.library_path())"
        if [ "$REQUIRE_CRK" = 1 ]; then
            crk --help >/dev/null
            echo "the crk console script runs the bundled binary"
        fi
        python -m pytest -q -p no:cacheprovider "$ROOT/bindings/python/tests" "${PYTEST_ARGS[@]}"
    )
}
PYTEST_ARGS=("$@")

echo "--- pip wheel ./bindings/python (fresh venv, build isolation)"
start=$SECONDS
"$PYTHON" -m venv "$WORK/build"
clean_build
"$WORK/build/bin/python" -m pip wheel "${PIP_QUIET[@]}" --no-deps -w "$WORK/wheels" ./bindings/python
WHEEL=$(ls "$WORK"/wheels/crkernels-*.whl)
echo "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1)) in $((SECONDS - start)) s"
case $(basename "$WHEEL") in
    *-py3-none-linux_*.whl | *-py3-none-macosx_*.whl | *-py3-none-win_*.whl) ;;
    *) echo "$0: expected a py3-none-<platform> wheel, got $(basename "$WHEEL")" >&2; exit 1 ;;
esac
"$PYTHON" - "$WHEEL" "$REQUIRE_CRK" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["crkernels/__init__.py", "crkernels/pipeline.py", "crkernels/libcrkernels.so"]
if sys.argv[2] == "1":
    need.append("crkernels/bin/crk")
missing = [n for n in need if n not in names]
assert not missing, f"the wheel lacks {missing}: {sorted(names)}"
print("the wheel holds", ", ".join(need[2:]))
PY
if [ -n "${KEEP_WHEEL:-}" ]; then mkdir -p "$KEEP_WHEEL" && cp "$WHEEL" "$KEEP_WHEEL"/; fi

echo "--- the wheel into a fresh venv"
"$PYTHON" -m venv "$WORK/wheel"
PATH="$NORUST_PATH" "$WORK/wheel/bin/python" -m pip install "${PIP_QUIET[@]}" "$WHEEL" pytest
test_install "$WORK/wheel" "the installed wheel"

echo "--- pip install ./bindings/python (fresh venv)"
start=$SECONDS
"$PYTHON" -m venv "$WORK/source"
clean_build
"$WORK/source/bin/python" -m pip install "${PIP_QUIET[@]}" ./bindings/python pytest
echo "installed in $((SECONDS - start)) s"
test_install "$WORK/source" "pip install ./bindings/python"

echo "the wheel and pip install both work without Rust"
