//! Model files cannot hurt the host: a bounded, seeded, structure-aware mutation test of the
//! MADE and network loaders on stable Rust (the coverage-guided fuzzing is
//! scripts/fuzz-loaders.sh). Each seed file from tests/data is parsed into its safetensors
//! header (JSON) and data, mutated in one of the ways below, reassembled, and checked by
//! tests/loader_support (load through the C ABI within an allocation bound; a refusal with a
//! status and a message; a loaded model runs on a few rows):
//!
//! - tensor shapes (dimensions set to 0, 1, 2^31, 2^32, 2^40, 2^53, 2^64 - 1, ...; added or
//!   removed), dtypes, data offsets, the header's length field;
//! - metadata values (counts, activation, format, epsilon, ...), and for networks the
//!   layer-list JSON: any node replaced by a huge, negative, fractional or wrongly typed value,
//!   list entries dropped or repeated, keys removed;
//! - tensors removed or renamed, truncation, byte flips in the header and the data.
//!
//! Explicit cases check that declared sizes up to 2^64 are refused before anything of that size
//! is allocated, and that the path loaders refuse as the buffer loaders do.

mod alloc_support;
mod loader_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloc_support::CountingAllocator;
use crkernels::ffi::made::{crk_made_free, crk_made_load, crk_made_load_options};
use crkernels::ffi::network::{crk_network_free, crk_network_load};
use crkernels::ffi::{CRK_ERR_FORMAT, CRK_OK, crk_last_error_message};
use loader_support::{Outcome, SplitMix64, exercise_made, exercise_network};
use serde_json::{Map, Value, json};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Mutated cases per seed file.
const CASES_PER_SEED: usize = 1500;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

const MADE_SEEDS: &[&str] = &[
    "made/plain_h1_sigmoid_k1.safetensors",
    "made/plain_f16.safetensors",
    "made/plain_bf16.safetensors",
    "made/plain_h3_tanh_k3_ctxsecret.safetensors",
    "made/plain_d1_noctx.safetensors",
    "made/nflows_mademog_noctx_1blk_k1.safetensors",
    "made/nflows_sbi_ctx_bn_1blk_k1.safetensors",
    "made/nflows_d1_ctx_1blk_k3.safetensors",
];

const NETWORK_SEEDS: &[&str] = &[
    "conv/net_small_f16.safetensors",
    "conv/net_small_mixed.safetensors",
    "conv/net_sd_two_branch.safetensors",
    "conv/net_sd_two_branch_keras.safetensors",
];

/// Sizes a mutation writes into shapes, offsets, counts and the header length.
const SPECIAL_SIZES: &[u64] =
    &[0, 1, 2, 3, 7, 255, 65_535, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 40, 1 << 53, 1 << 63, u64::MAX];

const DTYPES: &[&str] =
    &["F32", "F64", "F16", "BF16", "I32", "I64", "I8", "U8", "BOOL", "F8_E4M3", "C64", "XYZ"];

const SPECIAL_STRINGS: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "3",
    "16777216",
    "4294967296",
    "18446744073709551616",
    "1e308",
    "-1e-300",
    "nan",
    "inf",
    "true",
    "relu",
    "gelu",
    "keras",
    "crkernels.made.v1",
    "crkernels.network.v1",
    "{\"",
    "[]",
];

/// The mutations' random numbers: the cases are the same on every run.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A size near `current` or a special one.
    fn size(&mut self, current: u64) -> u64 {
        match self.below(3) {
            0 => current.wrapping_add(1),
            1 => current.wrapping_sub(1),
            _ => *self.pick(SPECIAL_SIZES),
        }
    }
}

/// A safetensors file as its header (JSON object) and data.
#[derive(Clone)]
struct SafetensorsFile {
    header: Map<String, Value>,
    data: Vec<u8>,
}

impl SafetensorsFile {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        Self { header: header.as_object().unwrap().clone(), data: bytes[8 + n..].to_vec() }
    }

    fn bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(&self.header).unwrap();
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&json);
        out.extend_from_slice(&self.data);
        out
    }

    fn tensor_names(&self) -> Vec<String> {
        self.header.keys().filter(|k| *k != "__metadata__").cloned().collect()
    }

    /// Gives tensor `name` a new shape and data, moving the other tensors' data so that the
    /// offsets stay contiguous (a valid file, as far as the safetensors layer can tell).
    fn replace(&mut self, name: &str, shape: Value, bytes: &[u8]) {
        let mut order: Vec<(u64, String)> = self
            .tensor_names()
            .into_iter()
            .map(|n| (self.header[&n]["data_offsets"][0].as_u64().unwrap_or(0), n))
            .collect();
        order.sort();
        let mut data = Vec::new();
        for (_, tensor) in order {
            let info = &mut self.header[&tensor];
            let offsets = &info["data_offsets"];
            let (begin, end) = (offsets[0].as_u64().unwrap() as usize, offsets[1].as_u64().unwrap() as usize);
            let start = data.len();
            if tensor == name {
                info["shape"] = shape.clone();
                data.extend_from_slice(bytes);
            } else {
                data.extend_from_slice(&self.data[begin..end]);
            }
            info["data_offsets"] = json!([start, data.len()]);
        }
        self.data = data;
    }

    fn metadata(&mut self) -> Option<&mut Map<String, Value>> {
        self.header.get_mut("__metadata__").and_then(Value::as_object_mut)
    }
}

/// A JSON value of the kinds a layer list holds, chosen to break assumptions.
fn strange_value(rng: &mut Rng, current: &Value) -> Value {
    match rng.below(8) {
        0 => json!(rng.size(current.as_u64().unwrap_or(1))),
        1 => json!(-(rng.below(1000) as i64) - 1),
        2 => json!(*rng.pick(&[0.5, -0.0, 1e300, 2.5e-320])),
        3 => json!(*rng.pick(SPECIAL_STRINGS)),
        4 => json!([rng.size(1), rng.size(1)]),
        5 => json!([[rng.size(0), rng.size(1)], [0, rng.size(0)]]),
        6 => rng.pick(&[Value::Null, json!(true), json!([]), json!({})]).clone(),
        _ => json!(*rng.pick(&["conv1d", "conv2d", "dense", "batchnorm", "concat", "flatten", "softmax"])),
    }
}

/// Every JSON pointer into `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out))
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
        _ => {}
    }
    out.push(at);
}

/// Mutates one node of the network's layer-list JSON.
fn mutate_network_json(rng: &mut Rng, text: &str) -> String {
    let Ok(mut spec) = serde_json::from_str::<Value>(text) else { return text.to_string() };
    let mut all = Vec::new();
    pointers(&spec, String::new(), &mut all);
    let at = rng.pick(&all).clone();
    let node = spec.pointer_mut(&at).unwrap();
    match (rng.below(4), &mut *node) {
        (0, Value::Array(items)) if !items.is_empty() => {
            let i = rng.below(items.len());
            if rng.below(2) == 0 {
                items.remove(i);
            } else {
                let copy = items[i].clone();
                items.insert(i, copy);
            }
        }
        (0, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            map.remove(&key);
        }
        _ => *node = strange_value(rng, node),
    }
    spec.to_string()
}

/// One mutation of `seed`; returns the bytes.
fn mutate(rng: &mut Rng, seed: &SafetensorsFile, raw: &[u8]) -> Vec<u8> {
    let mut file = seed.clone();
    let names = file.tensor_names();
    let name = rng.pick(&names).clone();
    match rng.below(11) {
        0 | 1 => {
            let info = file.header[&name].as_object_mut().unwrap();
            let shape = info["shape"].as_array_mut().unwrap();
            match rng.below(4) {
                0 => shape.push(json!(rng.size(1))),
                1 if !shape.is_empty() => {
                    shape.pop();
                }
                _ if !shape.is_empty() => {
                    let i = rng.below(shape.len());
                    shape[i] = json!(rng.size(shape[i].as_u64().unwrap_or(0)));
                }
                _ => shape.push(json!(0)),
            }
        }
        2 => file.header[&name]["dtype"] = json!(*rng.pick(DTYPES)),
        3 => {
            let offsets = file.header[&name]["data_offsets"].as_array_mut().unwrap();
            let i = rng.below(2);
            offsets[i] = json!(rng.size(offsets[i].as_u64().unwrap_or(0)));
        }
        4 => {
            let size = rng.size(raw.len() as u64);
            let mut bytes = file.bytes();
            bytes[..8].copy_from_slice(&size.to_le_bytes());
            return bytes;
        }
        5 | 6 => {
            let choice = rng.below(8);
            if let Some(meta) = file.metadata() {
                let keys: Vec<String> = meta.keys().cloned().collect();
                let key = rng.pick(&keys).clone();
                if key == "network" && choice < 6 {
                    let text = meta[&key].as_str().unwrap_or_default().to_string();
                    meta[&key] = json!(mutate_network_json(rng, &text));
                } else if choice == 7 {
                    meta.remove(&key);
                } else {
                    meta[&key] = json!(*rng.pick(SPECIAL_STRINGS));
                }
            }
        }
        // An empty tensor (a zero dimension, no data) whose other dimensions are huge: valid
        // to the safetensors layer, so the model loaders must not size anything by it.
        7 if rng.below(2) == 0 => {
            let rank = 1 + rng.below(3);
            let mut shape: Vec<u64> = (0..rank).map(|_| rng.size(1)).collect();
            shape[rng.below(rank)] = 0;
            file.replace(&name, json!(shape), &[]);
        }
        7 => {
            let info = file.header.remove(&name).unwrap();
            if rng.below(2) == 0 {
                let renamed = names[rng.below(names.len())].clone() + ["x", ".weight", ""][rng.below(3)];
                file.header.insert(renamed, info);
            }
        }
        8 => {
            let mut bytes = raw.to_vec();
            bytes.truncate(rng.below(bytes.len()));
            return bytes;
        }
        9 => {
            let header_end = 8 + u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
            let mut bytes = raw.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(header_end);
                bytes[i] = *rng.pick(b"0123456789[]{},:\"FIU -e.");
            }
            return bytes;
        }
        _ => {
            let mut bytes = raw.to_vec();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            return bytes;
        }
    }
    file.bytes()
}

/// nflows settings to load with: none, or one of several (some invalid).
fn made_options(rng: &mut Rng) -> Option<crk_made_load_options> {
    match rng.below(4) {
        0 => Some(crk_made_load_options {
            activation: *rng.pick(&[-1, 0, 1, 2, 3, -7]),
            epsilon: *rng.pick(&[0.0, 1e-2, 1e-30, -1.0, f64::NAN, f64::INFINITY, 1e30]),
            sbi_dummy_input: *rng.pick(&[-1, 0, 1, 2]),
        }),
        _ => None,
    }
}

fn run_seeds(seeds: &[&str], exercise: impl Fn(&[u8], &mut Rng) -> Outcome) -> BTreeMap<String, [usize; 3]> {
    let mut rng = Rng(SplitMix64(0x5EED_F00D));
    let mut tally = BTreeMap::new();
    for seed in seeds {
        let raw = std::fs::read(data(seed)).unwrap();
        let parsed = SafetensorsFile::parse(&raw);
        let counts: &mut [usize; 3] = tally.entry(seed.to_string()).or_default();
        for _ in 0..CASES_PER_SEED {
            let bytes = mutate(&mut rng, &parsed, &raw);
            match exercise(&bytes, &mut rng) {
                Outcome::Refused => counts[0] += 1,
                Outcome::Loaded => counts[1] += 1,
                Outcome::LoadedTooLargeToRun => counts[2] += 1,
            }
        }
    }
    for (seed, [refused, loaded, large]) in &tally {
        eprintln!(
            "{seed}: {refused} refused, {loaded} loaded and ran, {large} loaded (too large to run here)"
        );
    }
    tally
}

#[test]
fn mutated_made_files_load_and_run_or_are_refused() {
    let tally = run_seeds(MADE_SEEDS, |bytes, rng| exercise_made(bytes, made_options(rng).as_ref()));
    let refused: usize = tally.values().map(|c| c[0]).sum();
    let loaded: usize = tally.values().map(|c| c[1]).sum();
    // The mutations must reach both sides: a test that only ever refuses checks little.
    assert!(refused > 5000 && loaded > 1000, "{refused} refused, {loaded} loaded");
}

#[test]
fn mutated_network_files_load_and_run_or_are_refused() {
    let tally = run_seeds(NETWORK_SEEDS, |bytes, _| exercise_network(bytes));
    let refused: usize = tally.values().map(|c| c[0]).sum();
    let loaded: usize = tally.values().map(|c| c[1]).sum();
    assert!(refused > 3000 && loaded > 500, "{refused} refused, {loaded} loaded");
}

/// A seed file with one tensor's shape and data replaced (the offsets laid out anew).
fn with_tensor(seed: &str, name: &str, shape: Value, bytes: &[u8]) -> Vec<u8> {
    let mut file = SafetensorsFile::parse(&std::fs::read(data(seed)).unwrap());
    assert!(file.header.contains_key(name), "{seed} has no {name}");
    file.replace(name, shape, bytes);
    file.bytes()
}

/// A network seed with its layer-list JSON replaced.
fn with_network_json(seed: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut file = SafetensorsFile::parse(&std::fs::read(data(seed)).unwrap());
    let meta = file.metadata().unwrap();
    let mut spec: Value = serde_json::from_str(meta["network"].as_str().unwrap()).unwrap();
    edit(&mut spec);
    meta["network"] = json!(spec.to_string());
    file.bytes()
}

#[test]
fn declared_sizes_up_to_2_pow_64_are_refused_before_allocating() {
    let plain = "made/plain_h1_sigmoid_k1.safetensors";
    let nflows = "made/nflows_mademog_noctx_1blk_k1.safetensors";
    let huge = [
        // 2^40 elements claimed in 64 bytes; 2^64 - 1 elements; a product that overflows.
        with_tensor(plain, "hidden.0.weight", json!([1u64 << 20, 1u64 << 20]), &[0; 64]),
        with_tensor(plain, "hidden.0.bias", json!([u64::MAX]), &[0; 16]),
        with_tensor(plain, "hidden.0.weight", json!([1u64 << 32, 1u64 << 32, 4]), &[0; 64]),
        // No data for a tensor whose other dimension is 2^40 (a valid safetensors file): the
        // loader must not size anything by it (nflows reads the feature count from this shape).
        with_tensor(nflows, "_made.initial_layer.weight", json!([0, 1u64 << 40]), &[]),
        with_tensor(nflows, "_made.initial_layer.weight", json!([1u64 << 40, 0]), &[]),
        with_tensor(plain, "hidden.0.degrees", json!([0]), &[]),
        with_tensor(plain, "hidden.0.weight", json!([0, 1u64 << 40]), &[]),
    ];
    for (i, bytes) in huge.iter().enumerate() {
        assert_eq!(exercise_made(bytes, None), Outcome::Refused, "case {i}");
    }
    let network = "conv/net_small_f16.safetensors";
    let inputs = |shape: Value| {
        with_network_json(network, |spec| {
            spec["inputs"][0]["shape"] = shape;
        })
    };
    for bytes in [
        // 2^40 values per sample, 2^64 - 1, and an overflowing product.
        inputs(json!([1, 1u64 << 40])),
        inputs(json!([u64::MAX])),
        inputs(json!([1u64 << 32, 1u64 << 32, 1u64 << 32])),
    ] {
        assert_eq!(exercise_network(&bytes), Outcome::Refused);
    }
    // A convolution padded by 2^40 on each side: its padded input alone would not fit.
    let padded = with_network_json(network, |spec| {
        let first_conv = spec["layers"].as_array_mut().unwrap().iter_mut().find(|l| l["type"] == "conv2d");
        if let Some(layer) = first_conv {
            layer["padding"] = json!([[1u64 << 40, 1u64 << 40], [0, 0]]);
        }
    });
    assert_eq!(exercise_network(&padded), Outcome::Refused);
}

#[test]
fn path_loaders_refuse_as_the_buffer_loaders_do() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loader_robustness");
    std::fs::create_dir_all(&dir).unwrap();
    let bad_made =
        with_tensor("made/plain_h1_sigmoid_k1.safetensors", "hidden.0.bias", json!([u64::MAX]), &[0; 16]);
    let bad_network = with_network_json("conv/net_small_f16.safetensors", |spec| {
        spec["inputs"][0]["shape"] = json!([1, 1u64 << 40]);
    });
    for (bytes, is_made) in [(bad_made, true), (bad_network, false)] {
        let path = dir.join(if is_made { "made.safetensors" } else { "network.safetensors" });
        std::fs::write(&path, &bytes).unwrap();
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path and writable out-pointers; handles freed if made.
        let status = unsafe {
            if is_made {
                let mut handle = std::ptr::null_mut();
                let status = crk_made_load(c_path.as_ptr(), &mut handle);
                crk_made_free(handle);
                status
            } else {
                let mut handle = std::ptr::null_mut();
                let status = crk_network_load(c_path.as_ptr(), &mut handle);
                crk_network_free(handle);
                status
            }
        };
        // SAFETY: a valid C string from the library.
        let message =
            unsafe { std::ffi::CStr::from_ptr(crk_last_error_message()) }.to_string_lossy().into_owned();
        assert_ne!(status, CRK_OK, "{} loaded", path.display());
        assert_eq!(status, CRK_ERR_FORMAT, "{message}");
        assert!(!message.is_empty());
    }
}
