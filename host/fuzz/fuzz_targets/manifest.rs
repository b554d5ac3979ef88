//! Manifest text → `toka_spec::manifest::parse` (YAML, shapes, validation).
//!
//! Invariants:
//! - no panic, whatever the text;
//! - an error never replays the input: text that is not a manifest at all
//!   (`run /etc/passwd`) is never quoted (no 40-byte run of it in the
//!   message), and a quoted value (`` `…` ``) is at most
//!   `MAX_QUOTED_VALUE` bytes (except in the executable and path fields,
//!   whose validation quotes paths and commands whole);
//! - a manifest that validates, re-serialised (as YAML, from the parsed
//!   document), validates again to the same `ToolSpec`. (`RawManifest` is
//!   private and has no `Serialize`: the round trip goes through
//!   `serde_yaml::Value`, which is what a tool that rewrites manifests
//!   would do.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use toka_fuzz::{
    MAX_ECHO_NOT_A_MANIFEST, MAX_QUOTED_VALUE, Sandbox, echoed_from_input, quoted, value_round_trip,
};
use toka_spec::manifest::{self, ManifestError};

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let sandbox = SANDBOX.get_or_init(Sandbox::new);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match manifest::parse(&sandbox.manifest, text) {
        Ok(spec) => roundtrip(sandbox, text, &spec),
        Err(ManifestError::Invalid { message, field, .. }) => {
            check_message(text, &field, &message);
        }
        Err(e @ ManifestError::Unreadable { .. }) => panic!("parse never reads the manifest: {e}"),
    }
});

fn check_message(text: &str, field: &str, message: &str) {
    // Validation after parsing quotes paths, interpreter names and commands
    // to copy in full (docs/RELIABILITY.md, after the findings table).
    let validation_quotes = field.starts_with("spec.executable.") || field.contains("_paths");
    for q in quoted(message).filter(|_| !validation_quotes) {
        assert!(
            q.len() <= MAX_QUOTED_VALUE + '…'.len_utf8(),
            "{field}: a quoted value of {} bytes: {message:.300}",
            q.len()
        );
    }
    if !looks_like_a_manifest(text)
        && let Some(run) =
            echoed_from_input(
                text,
                message,
                MAX_ECHO_NOT_A_MANIFEST,
                |t| match manifest::parse(&SANDBOX.get()?.manifest, t) {
                    Err(ManifestError::Invalid { message, .. }) => Some(message),
                    _ => None,
                },
            )
    {
        panic!("the error repeats the input {run:?}: {message:.300}");
    }
}

/// Text that mentions `metadata` or `spec` is (or was meant to be) a
/// manifest: its errors may quote a value it gives a field. (Whether the
/// whole text is YAML does not decide it: the deserializer reports the
/// first bad field before it reaches a syntax error further down.)
fn looks_like_a_manifest(text: &str) -> bool {
    text.contains("metadata") || text.contains("spec")
}

fn roundtrip(sandbox: &Sandbox, text: &str, spec: &manifest::ToolSpec) {
    let Some(again) = value_round_trip(text) else {
        return;
    };
    let spec2 = match manifest::parse(&sandbox.manifest, &again) {
        Ok(s) => s,
        Err(e) => panic!(
            "validated, but its re-serialisation does not: {e}\n--- first\n{text}\n--- again\n{again}"
        ),
    };
    let a = serde_json::to_value(spec).expect("ToolSpec serialises");
    let b = serde_json::to_value(&spec2).expect("ToolSpec serialises");
    assert_eq!(
        a, b,
        "re-serialised manifest validates to another ToolSpec:\n{again}"
    );
}
