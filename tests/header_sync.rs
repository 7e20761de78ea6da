//! The committed C header must equal what cbindgen generates from the sources (DESIGN.md).
//! Regenerate it with `CRKERNELS_UPDATE_HEADER=1 cargo test --test header_sync`.

use std::path::Path;

#[test]
fn committed_header_matches_the_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        // Only the C ABI module: the rest of the crate is Rust API.
        .with_src(root.join("src/ffi/mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = root.join("include/crkernels.h");
    if std::env::var_os("CRKERNELS_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/crkernels.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/crkernels.h is stale: run `CRKERNELS_UPDATE_HEADER=1 cargo test --test header_sync` and commit it"
    );
}
