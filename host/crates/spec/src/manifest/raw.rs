//! The YAML of a manifest as written: shapes and words only, unknown fields
//! refused while deserializing.

use super::{
    CapabilitySpec, DirMapping, EnvName, ExecutableKind, HostPattern, InterfaceSpec, OutputFormat,
    SecurityLevel, Sha256Hex, ToolName, Version,
};
use crate::units::{ByteSize, HumanDuration, Percent};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) metadata: RawMetadata,
    pub(super) spec: RawSpec,
    #[serde(default)]
    pub(super) interface: InterfaceSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetadata {
    pub(super) name: ToolName,
    pub(super) version: Version,
    #[serde(default)]
    pub(super) category: Option<String>,
    pub(super) description: String,
    #[serde(default)]
    pub(super) author: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) executable: RawExecutable,
    #[serde(default)]
    pub(super) capabilities: CapabilitySpec,
    #[serde(default)]
    pub(super) parameters: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) output: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) security: RawSecurity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExecutable {
    #[serde(rename = "type")]
    pub(super) kind: ExecutableKind,
    pub(super) path: PathBuf,
    #[serde(default)]
    pub(super) interpreter: Option<String>,
    #[serde(default)]
    pub(super) sha256: Option<Sha256Hex>,
    #[serde(default)]
    pub(super) output: Option<OutputFormat>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecurity {
    #[serde(default)]
    pub(super) level: Option<SecurityLevel>,
    #[serde(default)]
    pub(super) sandbox: RawSandbox,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSandbox {
    pub(super) readonly_paths: Vec<DirMapping>,
    pub(super) writable_paths: Vec<DirMapping>,
    pub(super) allow_network: bool,
    pub(super) allowed_hosts: Vec<HostPattern>,
    pub(super) env: Vec<EnvName>,
    pub(super) tools: Vec<ToolName>,
    pub(super) fuel: Option<u64>,
    pub(super) memory_limit: Option<ByteSize>,
    pub(super) cpu_limit: Option<Percent>,
    pub(super) timeout: Option<HumanDuration>,
    pub(super) output_limit: Option<ByteSize>,
    pub(super) llm_tokens: Option<u64>,
}
