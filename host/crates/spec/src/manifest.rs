//! Tool manifests: parses and validates a YAML manifest into a [`ToolSpec`].
//!
//! Everything a manifest can get wrong is reported here, once, with the file,
//! the field and the fix; nothing downstream reads the YAML again. Shapes and
//! words are checked while deserializing ([`raw`], [`types`]: unknown fields
//! are errors); facts about the world (files exist, capabilities cover the
//! sandbox) are checked right after, against the manifest's own directory
//! ([`validate`]). The pinned digest is checked where the executable's bytes
//! are read ([`pin`]), so what runs is what was checked.

mod pin;
mod raw;
mod schema;
mod types;
mod validate;
pub(crate) mod yaml;

pub use pin::{PinMismatch, check_pin};
pub use schema::{Schema, SchemaError};
pub use yaml::from_yaml;

pub use types::{
    Capability, DirMapping, EnvName, ExecutableKind, HostMatch, HostPattern, SecurityLevel,
    Sha256Hex, ToolName, Version, hex,
};

use crate::units::{ByteSize, HumanDuration, Percent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Manifests larger than this are refused unread: a manifest is a page of YAML.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;
/// Executables larger than this are refused.
pub const MAX_EXECUTABLE_BYTES: u64 = 512 << 20;

/// A validated tool description. Paths are absolute; every referenced file
/// existed when the manifest was loaded (its pin is checked when its bytes
/// are read, by [`check_pin`]).
#[derive(Clone, Debug, Serialize)]
pub struct ToolSpec {
    /// Where the manifest was read from (absolute).
    pub manifest: PathBuf,
    /// `metadata.name`.
    pub name: ToolName,
    /// `metadata.version`.
    pub version: Version,
    /// `metadata.description`.
    pub description: String,
    /// `metadata.category`.
    pub category: Option<String>,
    /// `metadata.author`.
    pub author: Option<String>,
    /// `spec.executable`, resolved.
    pub executable: ExecutableSpec,
    /// `spec.capabilities`.
    pub capabilities: CapabilitySpec,
    /// `spec.parameters`: JSON Schema of the input, checked in full.
    pub parameters: Schema,
    /// `spec.output`: JSON Schema of the output, when the manifest gives one
    /// (results are checked against it; MCP clients see it as
    /// `outputSchema`).
    pub output: Option<Schema>,
    /// `spec.security.level`.
    pub security_level: Option<SecurityLevel>,
    /// `spec.security.sandbox`, paths resolved.
    pub sandbox: SandboxSpec,
    /// The limits the manifest sets.
    pub limits: LimitSettings,
    /// `interface`.
    pub interface: InterfaceSpec,
}

/// What runs, resolved against the manifest's directory.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutableSpec {
    /// How it runs.
    pub kind: ExecutableKind,
    /// Absolute path of the file (for code from a registry: where it was
    /// pulled to, filled in when the tool is loaded).
    pub path: PathBuf,
    /// `oci://HOST/REPO@sha256:…` when the code comes from a registry.
    pub remote: Option<String>,
    /// Interpreter name (shell and python only).
    pub interpreter: Option<String>,
    /// The pinned digest, if the manifest pins one.
    pub sha256: Option<Sha256Hex>,
    /// What a subprocess tool prints on stdout.
    pub output: OutputFormat,
}

/// What a subprocess tool prints on stdout (`spec.executable.output`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Plain text, returned as a string.
    #[default]
    Text,
    /// One JSON value.
    Json,
}

/// `spec.capabilities`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitySpec {
    /// The tool does not run without these.
    #[serde(default)]
    pub required: Vec<Capability>,
    /// The tool uses these when granted and works without them.
    #[serde(default)]
    pub optional: Vec<Capability>,
}

impl CapabilitySpec {
    /// `required ∪ optional`.
    pub fn declared(&self) -> BTreeSet<Capability> {
        self.required
            .iter()
            .chain(&self.optional)
            .copied()
            .collect()
    }
}

/// `spec.security.sandbox`, with host paths made absolute.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SandboxSpec {
    /// Directories the tool may read.
    pub readonly_paths: Vec<DirMapping>,
    /// Directories the tool may read and write.
    pub writable_paths: Vec<DirMapping>,
    /// Whether the tool may use the network at all.
    pub allow_network: bool,
    /// Where it may connect.
    pub allowed_hosts: Vec<HostPattern>,
    /// Host environment variables passed through (names only).
    pub env: Vec<EnvName>,
    /// Tools a workflow may call.
    pub tools: Vec<ToolName>,
}

/// Limits as set by a manifest or by flags; `None` means "not set here".
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitSettings {
    /// Instructions (wasmtime fuel units).
    pub fuel: Option<u64>,
    /// Linear memory, all memories together.
    pub memory: Option<ByteSize>,
    /// Wall-clock time of the whole call.
    pub timeout: Option<HumanDuration>,
    /// Bytes the call may write (stdout, stderr, logs and result together).
    pub output: Option<ByteSize>,
    /// CPU share (subprocess tools).
    pub cpu: Option<Percent>,
    /// Language-model tokens a workflow run may spend (input and output).
    pub llm_tokens: Option<u64>,
}

impl LimitSettings {
    /// `self` where set, else `fallback`.
    pub fn or(self, fallback: LimitSettings) -> LimitSettings {
        LimitSettings {
            fuel: self.fuel.or(fallback.fuel),
            memory: self.memory.or(fallback.memory),
            timeout: self.timeout.or(fallback.timeout),
            output: self.output.or(fallback.output),
            cpu: self.cpu.or(fallback.cpu),
            llm_tokens: self.llm_tokens.or(fallback.llm_tokens),
        }
    }
}

/// `interface`: how registries and servers may treat the tool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceSpec {
    /// `interface.discovery`.
    #[serde(default)]
    pub discovery: Discovery,
    /// `interface.execution`.
    #[serde(default)]
    pub execution: Execution,
}

impl Default for InterfaceSpec {
    fn default() -> Self {
        InterfaceSpec {
            discovery: Discovery {
                auto_discover: true,
            },
            execution: Execution::default(),
        }
    }
}

/// `interface.discovery`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// Listed by registries that scan a directory.
    #[serde(default = "yes")]
    pub auto_discover: bool,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            auto_discover: true,
        }
    }
}

/// `interface.execution`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// May be replaced while the host runs.
    #[serde(default = "yes")]
    pub hot_swappable: bool,
    /// May run several calls at once.
    #[serde(default = "yes")]
    pub parallel_safe: bool,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            hot_swappable: true,
            parallel_safe: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read the manifest: {source}", file.display())]
    Unreadable {
        /// The manifest.
        file: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is well-formed YAML but says something invalid, or is not
    /// well-formed at all.
    #[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid {
        /// The manifest.
        file: PathBuf,
        /// Line of the problem, when known.
        line: Option<usize>,
        /// Dotted path of the field (`spec.security.sandbox.timeout`), or empty.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ManifestError {
    pub(crate) fn invalid(
        file: &Path,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ManifestError::Invalid {
            file: file.to_path_buf(),
            line: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

// ---- loading ------------------------------------------------------------

/// Reads, parses and validates the manifest at `path`.
///
/// # Errors
///
/// [`ManifestError::Unreadable`] when the file cannot be read, and
/// [`ManifestError::Invalid`] naming the field and the fix for everything
/// else: bad YAML, unknown fields, bad values, missing files, capabilities
/// that do not cover the sandbox.
pub fn load(path: &Path) -> Result<ToolSpec, ManifestError> {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = read_capped(&file)?;
    parse(&file, &text)
}

/// Reads a manifest's text, at most [`MAX_MANIFEST_BYTES`].
///
/// # Errors
///
/// [`ManifestError::Unreadable`] naming the file.
pub fn read_capped(file: &Path) -> Result<String, ManifestError> {
    let unreadable = |source| ManifestError::Unreadable {
        file: file.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(file).map_err(unreadable)?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ManifestError::invalid(
            file,
            "",
            format!(
                "the manifest is larger than {}; a manifest describes one tool in a page of YAML (is this the right file?)",
                ByteSize(MAX_MANIFEST_BYTES)
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| ManifestError::invalid(file, "", "the manifest is not UTF-8 text"))
}

/// Parses and validates manifest text as if read from `file` (absolute);
/// relative paths in it are resolved against `file`'s directory.
///
/// # Errors
///
/// As [`load`].
pub fn parse(file: &Path, text: &str) -> Result<ToolSpec, ManifestError> {
    let options = validate::Options {
        require_pin: true,
        ..validate::Options::default()
    };
    validate::validate(file, from_yaml(file, text)?, &options)
}

/// Parses and validates a manifest that arrived with its code (from a
/// registry): the code is `executable` whatever the manifest's own path
/// says, and relative sandbox paths are relative to `base` (the current
/// directory of `run`). `file` is where the manifest's bytes are stored.
///
/// # Errors
///
/// As [`load`].
pub fn parse_with_code(
    file: &Path,
    text: &str,
    executable: &Path,
    base: &Path,
) -> Result<ToolSpec, ManifestError> {
    let options = validate::Options {
        require_pin: true,
        executable: Some(executable.to_path_buf()),
        base: Some(base.to_path_buf()),
    };
    validate::validate(file, from_yaml(file, text)?, &options)
}

/// Reads a manifest to vet it (`toka-host tools vet`): as [`load`], except
/// that a subprocess tool without a pin is accepted, since recording the pin
/// is what vetting does.
///
/// # Errors
///
/// As [`load`].
pub fn load_for_vetting(path: &Path) -> Result<ToolSpec, ManifestError> {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = read_capped(&file)?;
    validate::validate(
        &file,
        from_yaml(&file, &text)?,
        &validate::Options::default(),
    )
}

/// `path` without `.` components (`manifests/./data` reads as `manifests/data`).
pub(crate) fn clean(path: PathBuf) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The OS's reason without the "(os error 2)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
