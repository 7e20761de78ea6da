//! Compiles the C programs in tests/c against include/crkernels.h and the static library,
//! runs them, and checks the header compiles as strict C99 and as C++17; builds and runs the
//! C++ wrapper tests (include/crkernels.hpp, tests/cpp) as C++17 and C++20 and the C++ example
//! (examples/cpp, with OpenMP); builds and runs the Fortran bindings, example and tests.
//!
//! In a cross build (scripts/test-aarch64.sh) the programs are compiled with the target's
//! cross compilers and run under qemu-user (tests/library_support).
//!
//! The C compiler ($CC, default cc) is required. The C++ compiler ($CXX, default c++, with
//! OpenMP for the examples) and the Fortran compiler ($FC, default gfortran) are optional:
//! without them, the tests (or parts) that need them are skipped with a notice, or fail under
//! CRKERNELS_REQUIRE_ALL=1 (tests/tool_support).

mod library_support;
mod tool_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use library_support::{library_dir, program, root};
use tool_support::{requirement_met, tool_available};

const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];
const CXX20_FLAGS: &[&str] = &["-std=c++20", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"];
const CXX_OPENMP_FLAGS: &[&str] =
    &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fopenmp"];

/// `$var` or `default`, or in a cross build the target's compiler (tests/library_support).
fn compiler(var: &str, default: &str) -> String {
    let cross = match var {
        "CXX" => "g++",
        "FC" => "gfortran",
        _ => "gcc",
    };
    library_support::compiler(var, default, cross)
}

/// The C++ compiler ($CXX, default c++), if available for `test` (tests/tool_support).
fn cxx_for(test: &str) -> Option<String> {
    let cxx = compiler("CXX", "c++");
    tool_available(&cxx, test).then_some(cxx)
}

/// The Fortran compiler ($FC, default gfortran), if available for `test` (tests/tool_support).
fn fortran_for(test: &str) -> Option<String> {
    let fortran = compiler("FC", "gfortran");
    tool_available(&fortran, test).then_some(fortran)
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
    run_with_args(exe, &[]);
}

/// Runs `exe` with `args`, or panics with its output.
fn run_with_args(exe: &Path, args: &[&std::ffi::OsStr]) {
    checked_output(program(exe).args(args), exe);
}

/// Runs `command` (the program `exe`) and returns its standard output, or panics with its
/// output.
fn checked_output(command: &mut Command, exe: &Path) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
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
    let Some(cxx) = cxx_for("header_compiles_as_cpp17") else { return };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("header_cpp");
    build(&cxx, CXX_FLAGS, &root().join("tests/c/header_check.cpp"), &exe);
    run(&exe);
}

/// The C++ wrapper (include/crkernels.hpp) tests, as C++17 (pointer + size) and as C++20
/// (std::span overloads too).
#[test]
fn cpp_wrapper_tests_pass() {
    let Some(cxx) = cxx_for("cpp_wrapper_tests_pass") else { return };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cpp_tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let source = root().join("tests/cpp/test_wrappers.cpp");
    for (name, flags) in [("test_wrappers_cpp17", CXX_FLAGS), ("test_wrappers_cpp20", CXX20_FLAGS)] {
        let exe = out_dir.join(name);
        build(&cxx, flags, &source, &exe);
        run(&exe);
    }
}

/// include/crkernels.hpp is what scripts/gen_cpp_header.py makes from include/crkernels.h, and
/// names every function of the C header as `::crk_name(`. Skipped with a notice without python3.
#[test]
fn cpp_header_is_up_to_date() {
    let header = std::fs::read_to_string(root().join("include/crkernels.h")).unwrap();
    let wrapper = std::fs::read_to_string(root().join("include/crkernels.hpp")).unwrap();
    let mut missing = Vec::new();
    for line in header.lines() {
        let Some(start) = line.find("crk_") else { continue };
        let rest = &line[start..];
        let Some(paren) = rest.find('(') else { continue };
        let name = &rest[..paren];
        let declaration =
            line.starts_with("crk_status ") || line.starts_with("void ") || line.starts_with("const char *");
        if declaration
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !wrapper.contains(&format!("::{name}("))
        {
            missing.push(name.to_string());
        }
    }
    assert!(missing.is_empty(), "not wrapped in include/crkernels.hpp: {missing:?}");
    match Command::new("python3").arg(root().join("scripts/gen_cpp_header.py")).arg("--check").output() {
        Ok(output) => assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => eprintln!("skipping the crkernels.hpp generation check: python3: {e}"),
    }
}

/// Whether `cxx` compiles and links an OpenMP program with -fopenmp (for `test`, under the
/// rule of tests/tool_support).
fn openmp_available(cxx: &str, out_dir: &Path, test: &str) -> bool {
    let source = out_dir.join("openmp_probe.cpp");
    std::fs::write(&source, "#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        .unwrap();
    let works = Command::new(cxx)
        .arg("-fopenmp")
        .arg(&source)
        .arg("-o")
        .arg(out_dir.join("openmp_probe"))
        .output()
        .is_ok_and(|o| o.status.success());
    requirement_met(works, &format!("{cxx} -fopenmp cannot build an OpenMP program"), "g++", test)
}

/// The C++ examples build with OpenMP (they call kernels from `omp parallel for` loops) and run.
#[test]
fn cpp_examples_build_and_run() {
    let Some(cxx) = cxx_for("cpp_examples_build_and_run") else { return };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cpp_examples");
    std::fs::create_dir_all(&out_dir).unwrap();
    if !openmp_available(&cxx, &out_dir, "cpp_examples_build_and_run") {
        return;
    }
    let mut built = 0;
    for entry in std::fs::read_dir(root().join("examples/cpp")).unwrap() {
        let source = entry.unwrap().path();
        if source.extension().is_some_and(|e| e == "cpp") {
            let exe = out_dir.join(source.file_stem().unwrap());
            build(&cxx, CXX_OPENMP_FLAGS, &source, &exe);
            run(&exe);
            built += 1;
        }
    }
    assert!(built > 0, "no C++ examples in examples/cpp");
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

/// Compiles the Fortran module bindings/fortran/crkernels.f90 with `program` into `exe`, in
/// `out_dir` (which receives the .mod file), or panics with the compiler output.
fn build_fortran(fortran: &str, out_dir: &Path, program: &Path, exe: &Path) {
    let output = Command::new(fortran)
        .args(["-std=f2008", "-Wall", "-Wextra", "-Werror", "-J"])
        .arg(out_dir)
        .arg(root().join("bindings/fortran/crkernels.f90"))
        .arg(program)
        .arg("-o")
        .arg(exe)
        .arg(library_dir().join("libcrkernels.a"))
        .args(["-lm", "-lpthread", "-ldl"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {fortran}: {e}"));
    assert!(
        output.status.success(),
        "{fortran} failed on {}:\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The Fortran bindings (bindings/fortran/crkernels.f90), example and layer test
/// (tests/fortran/layer.f90) compile and run against the static library, and an error without
/// `stat` stops the program with its message.
/// Needs $FC (default gfortran): skipped with a notice without it (tests/tool_support).
#[test]
fn fortran_bindings_and_example_run() {
    let Some(fortran) = fortran_for("fortran_bindings_and_example_run") else { return };
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fortran");
    std::fs::create_dir_all(&out_dir).unwrap();

    let exe = out_dir.join("loss_rates");
    build_fortran(&fortran, &out_dir, &root().join("examples/fortran/loss_rates.f90"), &exe);
    run(&exe);

    // The checked layer's conv/pool, network, propagation and mixture wrappers; the network
    // file goes as an absolute path (the program would otherwise resolve it from the cwd).
    let exe = out_dir.join("layer");
    build_fortran(&fortran, &out_dir, &root().join("tests/fortran/layer.f90"), &exe);
    let network = root().join("tests/data/conv/net_sd_two_branch.safetensors");
    run_with_args(&exe, &[network.as_os_str()]);

    let exe = out_dir.join("error_stop");
    build_fortran(&fortran, &out_dir, &root().join("tests/fortran/error_stop.f90"), &exe);
    let output = program(&exe).output().expect("run the Fortran error test");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && !stdout.contains("continued after an error"),
        "an error without stat must stop the program ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("crkernels error: crk_losses_rate: invalid argument"),
        "error stop must print the message:\n{stderr}"
    );
}

/// The first ````lang` code block of the README section that starts with `heading`.
fn readme_block(heading: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let section =
        readme.split(&format!("\n{heading}\n")).nth(1).unwrap_or_else(|| panic!("no {heading} in README"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let fence = format!("```{lang}\n");
    let start =
        section.find(&fence).unwrap_or_else(|| panic!("no {lang} block under {heading}")) + fence.len();
    let end = section[start..].find("```").expect("unterminated code block") + start;
    section[start..end].to_string()
}

/// Runs `exe` from the repository root and returns its standard output.
fn output_of(exe: &Path) -> String {
    checked_output(program(exe).current_dir(root()), exe)
}

/// The README's C, C++ and Fortran examples compile and run as written (the Python one is run
/// by scripts/test-python.sh; Julia cannot be installed here), and print the loss rate the
/// library gives. The C++ and Fortran parts are skipped with a notice without their compilers.
#[test]
fn readme_examples_run_as_written() {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme_examples");
    std::fs::create_dir_all(&out_dir).unwrap();
    let expected = "1.3097e-14";
    let c = out_dir.join("example.c");
    std::fs::write(&c, readme_block("## From C", "c")).unwrap();
    build(&compiler("CC", "cc"), C_FLAGS, &c, &out_dir.join("example_c"));
    assert!(output_of(&out_dir.join("example_c")).contains(expected));
    if let Some(cxx) = cxx_for("the C++ part of readme_examples_run_as_written") {
        let cpp = out_dir.join("example.cpp");
        std::fs::write(&cpp, readme_block("## From C++", "cpp")).unwrap();
        build(&cxx, CXX_FLAGS, &cpp, &out_dir.join("example_cpp"));
        let printed = output_of(&out_dir.join("example_cpp"));
        assert!(printed.contains(expected) && printed.contains("CRK_ERR_INVALID_ARGUMENT"), "{printed}");
    }
    let Some(fortran) = fortran_for("the Fortran part of readme_examples_run_as_written") else { return };
    let f90 = out_dir.join("my_losses.f90");
    std::fs::write(&f90, readme_block("## From Fortran", "fortran")).unwrap();
    build_fortran(&fortran, &out_dir, &f90, &out_dir.join("my_losses"));
    assert!(output_of(&out_dir.join("my_losses")).contains("1.3097E-14"));
}
