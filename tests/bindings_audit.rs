//! Every exported `crk_` symbol of the shared library is bound in every language binding.
//!
//! Builds the library (as tests/c_abi.rs does), lists its exported `crk_*` symbols with
//! `nm -D --defined-only` (or, where nm is missing, the prototypes of include/crkernels.h, with
//! a notice; under CRKERNELS_REQUIRE_ALL=1 a missing nm fails: tests/tool_support), and checks
//! that each appears
//! (a) in include/crkernels.h, as `crk_name(`;
//! (b) in the C++ wrapper include/crkernels.hpp, as `::crk_name(`;
//! (c) in the Fortran module bindings/fortran/crkernels.f90, as `name="crk_name"`;
//! (d) in the Julia bindings bindings/julia/src/generated.jl, as `libcrkernels.crk_name(`;
//! (e) in the Python package bindings/python/crkernels/*.py, as the word `crk_name`, for the
//!     families Python covers (crk_ensemble_*, crk_losses_*, crk_transport_*, crk_made_*,
//!     crk_conv*, crk_two_sample_*, crk_surrogate_*, crk_polynomial_feature_count, and
//!     crk_last_error_message).
//! A binding file that does not exist is reported as missing (not skipped). The Fortran and
//! Julia bindings must also not name a `crk_` function the library does not export. All
//! problems are listed in one failure message.

mod library_support;
mod tool_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use library_support::{library_dir, root};
use tool_support::tool_available;

/// The built shared library's path.
fn shared_library() -> PathBuf {
    let name = format!("{}crkernels{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let path = library_dir().join(name);
    assert!(path.exists(), "no {} after the build", path.display());
    path
}

/// Whether `name` occurs in `text` as a whole identifier.
fn contains_word(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The `crk_` functions the header declares: identifiers directly followed by `(`.
fn header_functions(header: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in header.match_indices("crk_") {
        let rest = &header[i..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let before = header[..i].chars().next_back();
        if rest[end..].starts_with('(') && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(rest[..end].to_string());
        }
    }
    names
}

/// The exported `crk_` symbols of the shared library, from `nm -D --defined-only`.
fn exported_symbols(library: &Path) -> BTreeSet<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm: {e}"));
    assert!(
        output.status.success(),
        "nm -D --defined-only {} failed:\n{}",
        library.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let symbols: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .map(|s| s.trim_start_matches('_').to_string())
        .filter(|s| s.starts_with("crk_"))
        .map(|s| s.split('@').next().unwrap_or(&s).to_string())
        .collect();
    symbols
}

fn read(relative: &str) -> Option<String> {
    std::fs::read_to_string(root().join(relative)).ok()
}

/// All *.py files under `dir`, concatenated; None when the directory does not exist.
fn python_sources(dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut paths: Vec<PathBuf> =
        entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "py")).collect();
    paths.sort();
    Some(paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect::<Vec<_>>().join("\n"))
}

/// The symbols Python must bind.
fn python_required(name: &str) -> bool {
    [
        "crk_ensemble_",
        "crk_losses_",
        "crk_transport_",
        "crk_made_",
        "crk_conv",
        "crk_two_sample_",
        "crk_surrogate_",
        "crk_polynomial_feature_count",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
        || name == "crk_last_error_message"
}

/// The `crk_` names a binding file binds: the identifiers right after each `prefix` and
/// directly followed by `suffix` (so that prose such as `name="crk_..."` does not count).
fn bound_names(text: &str, prefix: &str, suffix: char) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            let name = &rest[..end];
            (name.starts_with("crk_") && name.len() > 4 && rest[end..].starts_with(suffix))
                .then(|| name.to_string())
        })
        .collect()
}

#[test]
fn every_exported_symbol_is_bound_everywhere() {
    let header = read("include/crkernels.h").expect("include/crkernels.h");
    let library = shared_library();
    let symbols = if tool_available(
        "nm",
        "the library's symbol listing in every_exported_symbol_is_bound_everywhere (the header's \
         prototypes are used instead)",
    ) {
        exported_symbols(&library)
    } else {
        header_functions(&header)
    };
    assert!(
        symbols.len() > 50,
        "only {} crk_ symbols found in {}: {symbols:?}",
        symbols.len(),
        library.display()
    );

    let hpp = read("include/crkernels.hpp");
    let fortran = read("bindings/fortran/crkernels.f90");
    let julia = read("bindings/julia/src/generated.jl");
    let python = python_sources(&root().join("bindings/python/crkernels"));

    let mut missing_files = Vec::new();
    for (file, present) in [
        ("include/crkernels.hpp (C++ wrapper)", hpp.is_some()),
        ("bindings/fortran/crkernels.f90 (Fortran module)", fortran.is_some()),
        ("bindings/julia/src/generated.jl (Julia bindings)", julia.is_some()),
        ("bindings/python/crkernels/*.py (Python package)", python.is_some()),
    ] {
        if !present {
            missing_files.push(file.to_string());
        }
    }

    // (language, symbol) pairs that are missing.
    let mut missing: Vec<(&str, Vec<String>)> = Vec::new();
    let mut check =
        |language: &'static str, bound: &dyn Fn(&str) -> bool, required: &dyn Fn(&str) -> bool| {
            let absent: Vec<String> = symbols.iter().filter(|s| required(s) && !bound(s)).cloned().collect();
            if !absent.is_empty() {
                missing.push((language, absent));
            }
        };
    check("C header include/crkernels.h", &|s| header.contains(&format!("{s}(")), &|_| true);
    if let Some(text) = &hpp {
        check("C++ include/crkernels.hpp (`::crk_name(`)", &|s| text.contains(&format!("::{s}(")), &|_| true);
    }
    if let Some(text) = &fortran {
        check(
            "Fortran bindings/fortran/crkernels.f90 (`name=\"crk_name\"`)",
            &|s| text.contains(&format!("name=\"{s}\"")),
            &|_| true,
        );
    }
    if let Some(text) = &julia {
        check(
            "Julia bindings/julia/src/generated.jl (`libcrkernels.crk_name(`)",
            &|s| text.contains(&format!("libcrkernels.{s}(")),
            &|_| true,
        );
    }
    if let Some(text) = &python {
        check("Python bindings/python/crkernels/*.py", &|s| contains_word(text, s), &python_required);
    }

    // Bindings of functions the library does not export (stale after a rename or removal).
    let mut stale = Vec::new();
    for (language, text, prefix, suffix) in
        [("Fortran", &fortran, "name=\"", '"'), ("Julia", &julia, "libcrkernels.", '(')]
    {
        if let Some(text) = text {
            for name in bound_names(text, prefix, suffix) {
                if !symbols.contains(&name) {
                    stale.push(format!("{language}: {name}"));
                }
            }
        }
    }

    eprintln!("{} exported crk_ symbols in {}", symbols.len(), library.display());
    let mut report = String::new();
    if !missing_files.is_empty() {
        report += &format!("binding files missing:\n  {}\n", missing_files.join("\n  "));
    }
    for (language, absent) in &missing {
        report += &format!("{} symbol(s) not in {language}:\n  {}\n", absent.len(), absent.join("\n  "));
    }
    if !stale.is_empty() {
        report += &format!("bound but not exported by the library:\n  {}\n", stale.join("\n  "));
    }
    assert!(report.is_empty(), "bindings audit failed:\n{report}");
}
