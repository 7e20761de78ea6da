//! Compiles the C programs in tests/c against include/crkernels.h and the static library,
//! runs them, and checks the header compiles as strict C99 and as C++17.

use std::path::{Path, PathBuf};
use std::process::Command;

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding a fresh libcrkernels.a.
///
/// `cargo test` builds only the rlib, so a staticlib under target/ may be stale: build it here
/// with the cargo that runs the tests, into a target directory of its own (no lock contention
/// with the outer cargo), once per test binary.
fn library_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("staticlib");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--release", "--lib", "--package", "crkernels", "--target-dir"])
                .arg(&target)
                .current_dir(root())
                .status()
                .expect("run cargo build for the static library");
            assert!(status.success(), "cargo build of the static library failed");
            let dir = target.join("release");
            assert!(dir.join("libcrkernels.a").exists(), "no libcrkernels.a in {}", dir.display());
            dir
        })
        .clone()
}

fn compiler(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Compiles `source` into `exe` with the static library, or panics with the compiler output.
fn build(compiler: &str, flags: &[&str], source: &Path, exe: &Path) {
    let output = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .arg("-o")
        .arg(exe)
        .arg(library_dir().join("libcrkernels.a"))
        .args(["-lm", "-lpthread", "-ldl"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(exe: &Path) {
    let output = Command::new(exe).output().expect("run the C test");
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn c_programs_pass() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root().join("tests/c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no C tests in tests/c");
    for source in sources {
        let exe = out_dir.join(source.file_stem().unwrap());
        build(&compiler("CC", "cc"), C_FLAGS, &source, &exe);
        run(&exe);
    }
}

#[test]
fn header_compiles_as_cpp17() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("header_cpp");
    build(&compiler("CXX", "c++"), CXX_FLAGS, &root().join("tests/c/header_check.cpp"), &exe);
    run(&exe);
}

#[test]
fn c_examples_build_and_run() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_examples");
    std::fs::create_dir_all(&out_dir).unwrap();
    for entry in std::fs::read_dir(root().join("examples/c")).unwrap() {
        let source = entry.unwrap().path();
        if source.extension().is_some_and(|e| e == "c") {
            let exe = out_dir.join(source.file_stem().unwrap());
            build(&compiler("CC", "cc"), C_FLAGS, &source, &exe);
            run(&exe);
        }
    }
}

/// The Fortran bindings (include/crkernels.f90) and example compile and run against the
/// static library. Skipped with a notice when gfortran is absent, unless
/// CRKERNELS_REQUIRE_FORTRAN is set (as .ci/run does, after installing it).
#[test]
fn fortran_bindings_and_example_run() {
    let fortran = compiler("FC", "gfortran");
    if Command::new(&fortran).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CRKERNELS_REQUIRE_FORTRAN").is_none(),
            "{fortran} not found and CRKERNELS_REQUIRE_FORTRAN is set"
        );
        eprintln!("skipping the Fortran test: {fortran} not found");
        return;
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fortran");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("loss_rates");
    let output = Command::new(&fortran)
        .args(["-std=f2008", "-Wall", "-Wextra", "-Werror", "-J"])
        .arg(&out_dir)
        .arg(root().join("include/crkernels.f90"))
        .arg(root().join("examples/fortran/loss_rates.f90"))
        .arg("-o")
        .arg(&exe)
        .arg(library_dir().join("libcrkernels.a"))
        .args(["-lm", "-lpthread", "-ldl"])
        .output()
        .expect("run gfortran");
    assert!(output.status.success(), "gfortran failed:\n{}", String::from_utf8_lossy(&output.stderr));
    run(&exe);
}
