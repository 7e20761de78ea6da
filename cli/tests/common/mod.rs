//! Helpers of the `crk` integration tests: running the binary, temporary directories,
//! directory snapshots, an independent .npy reader, SHA-256 through `sha256sum` (coreutils,
//! independent of the tool's own `sha2`), and a small seeded random generator.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The contract's CSV header, spelled out here (not taken from the library).
pub const HEADER: &str = "sn_rate_1e4_per_Myr,log10_ecut_GeV,gamma,delta,kappa0_1e28_cm2_per_s";

/// The `crk` binary: Cargo's build of it, or `CRK_BIN` where set (scripts/gpu-check.sh runs
/// these tests on another machine, where Cargo's absolute path does not exist).
pub fn crk() -> Command {
    Command::new(std::env::var_os("CRK_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_crk").into()))
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("crk-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `crk` with `args`: its output.
pub fn run(args: &[&str]) -> Output {
    crk().args(args).output().expect("run crk")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `crk` and asserts it succeeds: its stdout and stderr.
pub fn run_ok(args: &[&str]) -> (String, String) {
    let out = run(args);
    assert!(
        out.status.success(),
        "crk {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Runs `crk` and asserts it fails with a message on stderr: the stderr.
pub fn run_fail(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "crk {args:?} succeeded where it should fail:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.status.code().is_some(), "crk {args:?} died of a signal: {}", out.status);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error"), "crk {args:?}: no error message on stderr: {stderr}");
    stderr
}

/// Every file under `dir` (recursively), by relative path, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
                out.insert(name, std::fs::read(&path).expect("read a file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts two snapshots hold the same files with the same bytes, naming the first difference.
pub fn assert_same_files(
    actual: &BTreeMap<String, Vec<u8>>,
    expected: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let names_a: Vec<&String> = actual.keys().collect();
    let names_e: Vec<&String> = expected.keys().collect();
    assert_eq!(names_a, names_e, "{what}: the file names differ");
    for (name, bytes) in expected {
        assert!(
            actual[name] == *bytes,
            "{what}: {name} differs ({} bytes vs {} expected)",
            actual[name].len(),
            bytes.len()
        );
    }
}

/// The SHA-256 of a file [hex] by `sha256sum` (coreutils).
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum (coreutils)");
    assert!(out.status.success(), "sha256sum {}: {}", path.display(), text(&out.stderr));
    text(&out.stdout).split_whitespace().next().expect("a digest").to_string()
}

/// A .npy file read independently of the tool: (descr, fortran_order, shape, data bytes).
pub struct Npy {
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
    pub header_len: usize,
}

impl Npy {
    pub fn read(path: &Path) -> Npy {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Npy::parse(&bytes)
    }

    /// Version 1.0 only (what the contract's writer uses for small headers).
    pub fn parse(bytes: &[u8]) -> Npy {
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "magic string and version 1.0");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header_len = 10 + len;
        assert_eq!(header_len % 64, 0, "the data starts at a multiple of 64 bytes");
        let dict = std::str::from_utf8(&bytes[10..header_len]).expect("an ASCII header");
        assert!(dict.ends_with('\n'), "the header ends in a newline");
        let dict = dict.trim_end();
        assert!(dict.starts_with('{') && dict.ends_with('}'), "a dict: {dict}");
        let inner = &dict[1..dict.len() - 1];
        let find = |key: &str| -> &str {
            let at = inner.find(&format!("'{key}':")).unwrap_or_else(|| panic!("no '{key}' in {dict}"));
            inner[at + key.len() + 3..].trim_start()
        };
        let descr = find("descr");
        let descr = descr[1..].split('\'').next().expect("a quoted descr").to_string();
        let fortran = find("fortran_order");
        let fortran_order = if fortran.starts_with("False") {
            false
        } else {
            assert!(fortran.starts_with("True"), "fortran_order: {fortran}");
            true
        };
        let shape = find("shape");
        assert!(shape.starts_with('('), "shape: {shape}");
        let shape: Vec<usize> = shape[1..]
            .split(')')
            .next()
            .expect("a closing parenthesis")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("a dimension"))
            .collect();
        Npy { descr, fortran_order, shape, data: bytes[header_len..].to_vec(), header_len }
    }

    /// The data as little-endian float32.
    pub fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.descr, "<f4");
        assert_eq!(self.data.len() % 4, 0);
        self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }
}

/// Writes a points CSV with the contract's header.
pub fn write_points(path: &Path, points: &[[f64; 5]]) {
    let mut text = format!("{HEADER}\n");
    for p in points {
        let row: Vec<String> = p.iter().map(|v| format!("{v:?}")).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write the points");
}

/// SplitMix64: a small seeded generator for the test's random choices.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A path as &str.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
