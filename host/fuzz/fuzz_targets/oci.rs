//! What a registry sends: OCI image manifests (`ImageManifest::parse`,
//! `select_layers`), the wasm config JSON, `oci://` references and the
//! manifest YAML layer check. The first byte picks which.
//!
//! Invariants: no panic; parse → `to_bytes` → parse gives the same manifest
//! and the same bytes again (the bytes are what Toka hashes and signs);
//! `select_layers` only returns sha256 layers of the two Toka media types
//! within the size limits; a reference prints as text that parses to the
//! same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toka_oci::Reference;
use toka_oci::artifact::{
    self, ImageManifest, TOKA_MANIFEST_LAYER, WASM_CONFIG, WASM_LAYER, WasmConfig,
};
use toka_spec::manifest::{MAX_EXECUTABLE_BYTES, MAX_MANIFEST_BYTES};

const REF: &str = "oci://127.0.0.1:5000/toka/fuzz@sha256:0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => manifest(rest),
        1 => {
            if let Ok(c) = serde_json::from_slice::<WasmConfig>(rest) {
                let bytes = serde_json::to_vec(&c).expect("a config serialises");
                let again: WasmConfig =
                    serde_json::from_slice(&bytes).expect("a serialised config parses");
                assert_eq!(c, again, "config round trip");
            }
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(r) = text.parse::<Reference>() {
                let printed = r.to_string();
                let again: Reference = printed.parse().unwrap_or_else(|e| {
                    panic!("{text:?} parsed, its printed form {printed:?} does not: {e}")
                });
                assert_eq!(r, again, "{text:?} → {printed:?}");
                assert_eq!(again.to_string(), printed);
            }
        }
        _ => {
            let _ = artifact::check_yaml(REF, rest);
        }
    }
});

fn manifest(raw: &[u8]) {
    let Ok(m) = ImageManifest::parse(REF, raw) else {
        return;
    };
    let bytes = m.to_bytes();
    let again = ImageManifest::parse(REF, &bytes).expect("what to_bytes writes parses");
    assert_eq!(m, again, "manifest round trip");
    assert_eq!(bytes, again.to_bytes(), "to_bytes is stable");
    if let Ok(layers) = artifact::select_layers(REF, &m) {
        assert_eq!(m.config.media_type, WASM_CONFIG);
        assert_eq!(layers.wasm.media_type, WASM_LAYER);
        assert_eq!(layers.manifest_yaml.media_type, TOKA_MANIFEST_LAYER);
        assert!(layers.wasm.sha256().is_some() && layers.manifest_yaml.sha256().is_some());
        assert!(layers.wasm.size <= MAX_EXECUTABLE_BYTES);
        assert!(layers.manifest_yaml.size <= MAX_MANIFEST_BYTES);
        assert_eq!(m.layers.len(), 2, "exactly the two Toka layers");
    }
}
