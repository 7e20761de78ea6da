//! Saving a MADE in the plain `crkernels.made.v1` layout (issue 16, "save"): every plain model
//! of tests/data/made (written by the independent NumPy reference, tests/reference/
//! made_reference.py) loads, saves and loads again to the same log-densities and samples, bit
//! for bit; the saved bytes read with the official Python `safetensors` package give the
//! original's tensors (tests/reference/made_save_check.py, with the reference venv); bad
//! requests give a status and a message.

mod made_support;
#[allow(dead_code)]
mod tool_support;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::{null, null_mut};

use crkernels::emulator::{ParallelMade, load_made, save_made, save_made_with_metadata};
use crkernels::ffi::made::{crk_made, crk_made_free, crk_made_load, crk_made_save};
use crkernels::ffi::{
    CRK_ERR_INVALID_ARGUMENT, CRK_ERR_IO, CRK_ERR_NULL_POINTER, CRK_OK, crk_last_error_message,
};
use crkernels::nn::load::PLAIN_FORMAT;
use crkernels::nn::save::spec_to_safetensors;
use crkernels::nn::{Activation, LoadOptions, Made};
use made_support::*;

/// A fresh directory under target/ for this test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("made_save_{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The plain-layout reference models: (name, path).
fn plain_models() -> Vec<(String, PathBuf)> {
    let models: Vec<(String, PathBuf)> = cases()
        .into_iter()
        .filter(|(_, _, _, meta)| meta.get("layout").map(String::as_str) == Some("plain"))
        .map(|(name, path, _, _)| (name, path))
        .collect();
    assert!(models.len() >= 15, "reference data missing: {} plain models", models.len());
    for activation in ["sigmoid", "tanh", "relu", "leaky_relu", "elu"] {
        assert!(
            models.iter().any(|(_, path)| read_all(path).1["activation"] == activation),
            "no plain reference model uses {activation}"
        );
    }
    models
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// log_prob on the reference rows and 300 samples (two context rows alternating), as bits.
fn fingerprint(made: &Made, name: &str) -> (Vec<u32>, Vec<u32>) {
    let (_, _, expected, _) = cases().into_iter().find(|c| c.0 == name).unwrap();
    let x = as_f32(&expected["x"]);
    let context = expected.get("context").map(as_f32).unwrap_or_default();
    let mut lp = vec![0.0f32; x.len() / made.n_dims()];
    made.log_prob_parallel(&context, &x, 2, &mut lp).unwrap_or_else(|e| panic!("{name}: {e}"));
    let n = 300;
    let c = made.n_context();
    let sample_context: Vec<f32> =
        (0..n).flat_map(|i| context[(i % 2) * c..(i % 2 + 1) * c].to_vec()).collect();
    let mut samples = vec![0.0f32; n * made.n_dims()];
    made.sample_parallel(&sample_context, 20260, 7, 2, &mut samples).unwrap();
    (bits(&lp), bits(&samples))
}

#[test]
fn load_save_load_gives_the_same_log_prob_and_samples_bit_for_bit() {
    let dir = scratch("round_trip");
    for (name, path) in plain_models() {
        let original = load_made(&path, &LoadOptions::default()).unwrap();
        let saved = dir.join(format!("{name}.safetensors"));
        save_made(&original, &saved).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reloaded = load_made(&saved, &LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (lp, samples) = fingerprint(&original, &name);
        let (lp2, samples2) = fingerprint(&reloaded, &name);
        assert_eq!(lp, lp2, "{name}: log_prob changed through save and load");
        assert_eq!(samples, samples2, "{name}: samples changed through save and load");
        assert_eq!(reloaded.order(), original.order(), "{name}");
        // The same model gives the same bytes, in memory and on disk; saving the reloaded
        // model changes nothing.
        let bytes = original.to_safetensors().unwrap();
        assert_eq!(bytes, std::fs::read(&saved).unwrap(), "{name}");
        assert_eq!(reloaded.to_safetensors().unwrap(), bytes, "{name}: not a fixed point");
        // The metadata and tensors as the safetensors crate reads them (not the library's loader).
        let (ours, meta) = read_all(&saved);
        let (theirs, their_meta) = read_all(&path);
        for key in ["format", "n_context", "n_dims", "n_components", "activation"] {
            assert_eq!(meta.get(key), their_meta.get(key), "{name}: metadata {key}");
        }
        assert_eq!(meta["format"], PLAIN_FORMAT);
        for (key, tensor) in &ours {
            let original = theirs.get(key).unwrap_or_else(|| panic!("{name}: {key} not in the original"));
            assert_eq!(tensor.shape, original.shape, "{name}: {key}");
            // Equal, or zero where the original has a weight outside the masks (plain_unmasked).
            let differ = tensor.values.iter().zip(&original.values).filter(|(a, b)| a != b).count();
            let zeroed =
                tensor.values.iter().zip(&original.values).filter(|(a, b)| **a == 0.0 && a != b).count();
            assert_eq!(differ, zeroed, "{name}: {key} differs from the original");
            if name != "plain_unmasked" {
                assert_eq!(differ, 0, "{name}: {key}");
            }
        }
        for key in theirs.keys().filter(|k| !ours.contains_key(*k)) {
            // Only an identity standardisation may be left out.
            assert!(key.starts_with("standardize."), "{name}: {key} missing from the saved file");
            let identity = if key.ends_with("_std") { 1.0 } else { 0.0 };
            assert!(theirs[key].values.iter().all(|&v| v == identity), "{name}: {key}");
        }
    }
}

/// The Python interpreter of the reference venv (CRKERNELS_REFERENCE_PYTHON, else .venv-ref
/// in the repository) when it imports numpy and safetensors.
fn reference_python() -> Option<PathBuf> {
    let python = std::env::var_os("CRKERNELS_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-ref/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import numpy, safetensors, ml_dtypes"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

#[test]
fn saved_files_read_with_pythons_safetensors_give_the_original_tensors() {
    let python = reference_python();
    if !tool_support::requirement_met(
        python.is_some(),
        "the reference venv .venv-ref (python3 -m venv .venv-ref && .venv-ref/bin/pip install -r \
         tests/reference/requirements-made.txt) not found",
        "python3-venv",
        "saved_files_read_with_pythons_safetensors_give_the_original_tensors",
    ) {
        return;
    }
    let dir = scratch("python");
    let mut args = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/made_save_check.py")];
    for (name, path) in plain_models() {
        let saved = dir.join(format!("{name}.safetensors"));
        save_made(&load_made(&path, &LoadOptions::default()).unwrap(), &saved).unwrap();
        args.push(path);
        args.push(saved);
    }
    let out = Command::new(python.unwrap()).args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}");
    assert!(out.status.success(), "made_save_check.py failed:\n{text}");
    assert_eq!(text.matches("saved copy has the same").count(), args.len() / 2);
}

#[test]
fn extra_metadata_is_stored_and_reserved_keys_are_refused() {
    let dir = scratch("metadata");
    let made =
        load_made(&data_dir().join("plain_h1_elu_k5_ctx0_std.safetensors"), &LoadOptions::default()).unwrap();
    let path = dir.join("with_settings.safetensors");
    let extra =
        vec![("trainer.epochs".to_string(), "22".to_string()), ("note".into(), "a \"quoted\"\nline".into())];
    save_made_with_metadata(&made, &path, &extra).unwrap();
    let (_, meta) = read_all(&path);
    assert_eq!(meta["trainer.epochs"], "22");
    assert_eq!(meta["note"], "a \"quoted\"\nline");
    assert_eq!(meta["activation"], "elu");
    assert!(load_made(&path, &LoadOptions::default()).is_ok());
    for bad in
        [vec![("activation".to_string(), "relu".to_string())], vec![extra[0].clone(), extra[0].clone()]]
    {
        let err = save_made_with_metadata(&made, &path, &bad).unwrap_err();
        assert!(matches!(err, crkernels::Error::InvalidArgument(_)), "{err}");
    }
}

#[test]
fn nflows_models_and_unwritable_paths_are_refused() {
    let dir = scratch("errors");
    let nflows =
        load_made(&data_dir().join("nflows_bare_ctx_bn_2blk_k5.safetensors"), &LoadOptions::default())
            .unwrap();
    let target = dir.join("nflows.safetensors");
    let err = save_made(&nflows, &target).unwrap_err();
    assert!(matches!(err, crkernels::Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("cannot be stored in the plain"), "{err}");
    assert!(!target.exists());
    // Its spec exists all the same (to_spec works for any model) and compiles to it.
    let spec = nflows.to_spec().unwrap();
    assert!(spec_to_safetensors(&spec).is_err());
    let rebuilt = Made::new(spec).unwrap();
    assert_eq!(
        fingerprint(&rebuilt, "nflows_bare_ctx_bn_2blk_k5"),
        fingerprint(&nflows, "nflows_bare_ctx_bn_2blk_k5")
    );
    // A plain model with an activation the layout lacks (identity) or mixed ones.
    let plain =
        load_made(&data_dir().join("plain_h3_tanh_k3_ctxsecret.safetensors"), &LoadOptions::default())
            .unwrap();
    let mut spec = plain.to_spec().unwrap();
    if let crkernels::nn::made::LayerSpec::Dense { activation, .. } = &mut spec.layers[1] {
        *activation = Activation::Relu;
    }
    let err = spec_to_safetensors(&spec).unwrap_err();
    assert!(err.to_string().contains("one activation"), "{err}");
    // A directory, a missing directory: Io, and no file left behind.
    for bad in [dir.clone(), dir.join("missing/model.safetensors")] {
        let err = save_made(&plain, &bad).unwrap_err();
        assert!(matches!(err, crkernels::Error::Io(_)), "{}: {err}", bad.display());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a temporary file was left behind");
    // An existing file is replaced whole.
    let existing = dir.join("existing.safetensors");
    std::fs::write(&existing, b"old").unwrap();
    save_made(&plain, &existing).unwrap();
    assert_eq!(std::fs::read(&existing).unwrap(), plain.to_safetensors().unwrap());
}

fn last_error() -> String {
    // SAFETY: the library's thread-local message, a valid C string.
    unsafe { CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned()
}

#[test]
fn the_c_entry_point_saves_and_reports_errors() {
    let dir = scratch("c_abi");
    let load = |path: &Path| {
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        let mut m: *mut crk_made = null_mut();
        // SAFETY: a valid path and out-pointer.
        assert_eq!(unsafe { crk_made_load(c_path.as_ptr(), &mut m) }, CRK_OK, "{}", last_error());
        m
    };
    let m = load(&data_dir().join("plain_h2_leaky_relu_k3_ctxsecret_std.safetensors"));
    let saved = dir.join("saved.safetensors");
    let c_saved = CString::new(saved.to_str().unwrap()).unwrap();
    // SAFETY: a live handle and a valid path.
    assert_eq!(unsafe { crk_made_save(m, c_saved.as_ptr()) }, CRK_OK, "{}", last_error());
    let reloaded = load(&saved);
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        load_made(
            &data_dir().join("plain_h2_leaky_relu_k3_ctxsecret_std.safetensors"),
            &LoadOptions::default()
        )
        .unwrap()
        .to_safetensors()
        .unwrap()
    );
    // SAFETY: NULL arguments are checked.
    assert_eq!(unsafe { crk_made_save(null(), c_saved.as_ptr()) }, CRK_ERR_NULL_POINTER);
    assert!(last_error().contains('m'), "{}", last_error());
    // SAFETY: as above.
    assert_eq!(unsafe { crk_made_save(m, null()) }, CRK_ERR_NULL_POINTER);
    assert!(last_error().contains("path"), "{}", last_error());
    let c_dir = CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: a live handle and a valid path (a directory).
    assert_eq!(unsafe { crk_made_save(m, c_dir.as_ptr()) }, CRK_ERR_IO);
    assert!(last_error().contains(dir.to_str().unwrap()), "{}", last_error());
    let nflows = load(&data_dir().join("nflows_sbi_ctx_2blk_k5.safetensors"));
    let c_nflows = CString::new(dir.join("nflows.safetensors").to_str().unwrap()).unwrap();
    // SAFETY: a live handle and a valid path.
    assert_eq!(unsafe { crk_made_save(nflows, c_nflows.as_ptr()) }, CRK_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("plain"), "{}", last_error());
    // SAFETY: handles from crk_made_load, each freed once.
    unsafe {
        crk_made_free(m);
        crk_made_free(reloaded);
        crk_made_free(nflows);
    }
}
