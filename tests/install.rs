//! scripts/install.sh installs a usable package: it runs the script into a prefix under
//! target/, checks the files, the SONAME and the symlinks, builds and runs the CMake consumer
//! (tests/cmake_consumer) against crkernels::crkernels and crkernels::crkernels_static, and
//! compiles and runs a C program with the flags from `pkg-config --cflags --libs crkernels`.
//!
//! Needs bash and a C compiler; the checks that need cmake, a C++ compiler ($CXX, default
//! c++), pkg-config or readelf are skipped with a notice where the tool is missing, or fail
//! under CRKERNELS_REQUIRE_ALL=1 (tests/tool_support).

mod tool_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tool_support::tool_available;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn checked(what: &str, command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Installs into a fresh prefix, once per test binary, and returns it.
fn install_prefix() -> PathBuf {
    static PREFIX: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let prefix = tmp().join("install-prefix");
            let _ = std::fs::remove_dir_all(&prefix);
            // The target directory tests/c_abi.rs builds its static library in: the same
            // cargo command, so the second of the two builds is a no-op.
            checked(
                "scripts/install.sh",
                Command::new("bash")
                    .arg(root().join("scripts/install.sh"))
                    .arg(&prefix)
                    .env("CARGO", env!("CARGO"))
                    .env("CARGO_TARGET_DIR", tmp().join("staticlib"))
                    .env_remove("DESTDIR"),
            );
            prefix
        })
        .clone()
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn install_layout_and_soname() {
    let prefix = install_prefix();
    let lib = prefix.join("lib");
    let major = version().split('.').next().unwrap();
    for file in [
        "include/crkernels.h".to_string(),
        "include/crkernels.hpp".to_string(),
        "lib/libcrkernels.a".to_string(),
        format!("lib/libcrkernels.so.{}", version()),
        "lib/pkgconfig/crkernels.pc".to_string(),
        "lib/cmake/crkernels/crkernelsConfig.cmake".to_string(),
        "lib/cmake/crkernels/crkernelsConfigVersion.cmake".to_string(),
    ] {
        assert!(prefix.join(&file).is_file(), "{file} not installed");
    }
    let link = |name: &str| std::fs::read_link(lib.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        link(&format!("libcrkernels.so.{major}")),
        PathBuf::from(format!("libcrkernels.so.{}", version()))
    );
    assert_eq!(link("libcrkernels.so"), PathBuf::from(format!("libcrkernels.so.{major}")));
    assert_eq!(
        std::fs::read(lib.join("libcrkernels.so")).unwrap(),
        std::fs::read(lib.join(format!("libcrkernels.so.{}", version()))).unwrap()
    );

    if tool_available("readelf", "the SONAME check of install_layout_and_soname") {
        let out = checked(
            "readelf -d",
            Command::new("readelf").arg("-d").arg(lib.join(format!("libcrkernels.so.{}", version()))),
        );
        let dynamic = String::from_utf8_lossy(&out.stdout);
        assert!(
            dynamic.contains(&format!("Library soname: [libcrkernels.so.{major}]")),
            "wrong or missing SONAME:\n{dynamic}"
        );
    }

    // pkg-config: the static link flags carry the system libraries.
    if !tool_available("pkg-config", "the pkg-config checks of install_layout_and_soname") {
        return;
    }
    let pc_path = lib.join("pkgconfig");
    let out = checked(
        "pkg-config --static --libs crkernels",
        Command::new("pkg-config").args(["--static", "--libs", "crkernels"]).env("PKG_CONFIG_PATH", &pc_path),
    );
    let flags = String::from_utf8_lossy(&out.stdout);
    for flag in ["-lcrkernels", "-lm", "-lpthread", "-ldl"] {
        assert!(flags.split_whitespace().any(|f| f == flag), "{flag} missing from `{flags}`");
    }
    let out = checked(
        "pkg-config --modversion crkernels",
        Command::new("pkg-config").args(["--modversion", "crkernels"]).env("PKG_CONFIG_PATH", &pc_path),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), version());
}

#[test]
fn cmake_consumer_builds_and_runs() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    if !tool_available("cmake", "cmake_consumer_builds_and_runs")
        || !tool_available(&cxx, "cmake_consumer_builds_and_runs")
    {
        return;
    }
    let prefix = install_prefix();
    for (kind, static_lib) in [("shared", "OFF"), ("static", "ON")] {
        let build = tmp().join(format!("cmake_consumer_{kind}"));
        let _ = std::fs::remove_dir_all(&build);
        checked(
            &format!("cmake configure ({kind})"),
            Command::new("cmake")
                .arg("-S")
                .arg(root().join("tests/cmake_consumer"))
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg(format!("-DCRKERNELS_STATIC={static_lib}"))
                .arg("-DCMAKE_BUILD_TYPE=Release"),
        );
        checked(&format!("cmake --build ({kind})"), Command::new("cmake").arg("--build").arg(&build));
        let exe = build.join("consumer");
        let out = checked(&format!("the {kind} consumer"), &mut Command::new(&exe));
        assert!(String::from_utf8_lossy(&out.stdout).contains("via find_package"));
        if tool_available("readelf", "the NEEDED check of cmake_consumer_builds_and_runs") {
            let out = checked("readelf -d consumer", Command::new("readelf").arg("-d").arg(&exe));
            let needs_shared = String::from_utf8_lossy(&out.stdout).contains("[libcrkernels.so.");
            assert_eq!(needs_shared, kind == "shared", "the {kind} consumer's NEEDED entries are wrong");
        }
    }
}

const PKG_CONFIG_PROGRAM: &str = r#"#include <crkernels.h>
#include <stdio.h>
int main(void) {
    crk_losses *losses = NULL;
    double e = 100.0, b = 0.0;
    if (crk_losses_new_preset(CRK_LOSS_KN_EXACT, CRK_ISRF_DELAHAYE2010, 3.0, &losses) != CRK_OK) return 1;
    if (crk_losses_rate(losses, &e, 1, &b) != CRK_OK || !(b > 0.0)) return 2;
    crk_losses_free(losses);
    printf("crkernels %s via pkg-config: b(100 GeV) = %.4e GeV/s\n", crk_version(), b);
    return 0;
}
"#;

#[test]
fn pkg_config_program_builds_and_runs() {
    if !tool_available("pkg-config", "pkg_config_program_builds_and_runs") {
        return;
    }
    let prefix = install_prefix();
    let dir = tmp().join("pkg_config_program");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("main.c");
    std::fs::write(&source, PKG_CONFIG_PROGRAM).unwrap();
    let out = checked(
        "pkg-config --cflags --libs crkernels",
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "crkernels"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
    );
    let flags: Vec<String> =
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
    let exe = dir.join("main");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    checked(
        "cc with pkg-config flags",
        Command::new(&cc)
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
            .arg(&source)
            .arg("-o")
            .arg(&exe)
            .args(&flags),
    );
    // The shared library, found at run time through LD_LIBRARY_PATH and the SONAME link.
    let out =
        checked("the pkg-config program", Command::new(&exe).env("LD_LIBRARY_PATH", prefix.join("lib")));
    assert!(String::from_utf8_lossy(&out.stdout).contains("via pkg-config"));
}
