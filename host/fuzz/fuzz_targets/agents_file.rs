//! The agents file of `toka-host orchestrate` (and the body of
//! `POST /v1/agents`), through `toka_spec::manifest::from_yaml`.
//!
//! The file's types (`AgentsFile`, `AgentEntry`) are private to the
//! toka-host binary (host/src/cli/orchestrate.rs) and `AgentLimits` lives
//! in toka-runtime (which would bring wasmtime into the fuzz build), so
//! this target mirrors their serde shape field for field with toka-spec's
//! unit types. Keep it in step with orchestrate.rs.
//!
//! Invariants:
//! - no panic;
//! - text that is not an agents file at all is never quoted in an error
//!   (no 40-byte run of it), and a quoted value is at most
//!   `MAX_QUOTED_VALUE` bytes;
//! - a file that parses, re-serialised through `serde_yaml::Value`, parses
//!   to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use std::path::Path;
use toka_fuzz::{
    MAX_ECHO_NOT_A_MANIFEST, MAX_QUOTED_VALUE, echoed_from_input, quoted, value_round_trip,
};
use toka_spec::manifest::{ManifestError, from_yaml};
use toka_spec::units::{ByteSize, HumanDuration};

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    limits: AgentLimits,
    agents: Vec<AgentEntry>,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    #[serde(default)]
    name: Option<String>,
    workflow: String,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    limits: AgentLimits,
    #[serde(default)]
    replicas: Option<u32>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct AgentLimits {
    fuel: Option<u64>,
    memory: Option<ByteSize>,
    timeout: Option<HumanDuration>,
    output: Option<ByteSize>,
    llm_tokens: Option<u64>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/agents.yaml");
    match from_yaml::<AgentsFile>(file, text) {
        Ok(_) => {
            let Some(again) = value_round_trip(text) else {
                return;
            };
            let a = from_yaml::<AgentsFile>(file, text).expect("parses twice");
            let b = match from_yaml::<AgentsFile>(file, &again) {
                Ok(b) => b,
                Err(e) => panic!("parsed, but its re-serialisation does not: {e}\n{again}"),
            };
            assert_eq!(
                a, b,
                "re-serialised agents file parses to other entries:\n{again}"
            );
        }
        Err(ManifestError::Invalid { message, field, .. }) => {
            for q in quoted(&message) {
                assert!(
                    q.len() <= MAX_QUOTED_VALUE + '…'.len_utf8(),
                    "{field}: {message:.300}"
                );
            }
            // As for manifests: text that names `agents` or `limits` may be
            // quoted, anything else (a file that is not an agents file) not.
            let agents_like = text.contains("agents") || text.contains("limits");
            if !agents_like
                && let Some(run) =
                    echoed_from_input(
                        text,
                        &message,
                        MAX_ECHO_NOT_A_MANIFEST,
                        |t| match from_yaml::<AgentsFile>(file, t) {
                            Err(ManifestError::Invalid { message, .. }) => Some(message),
                            _ => None,
                        },
                    )
            {
                panic!("the error repeats the input {run:?}: {message:.300}");
            }
        }
        Err(e) => panic!("from_yaml reads no file: {e}"),
    }
});
