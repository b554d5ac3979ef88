//! Tool manifests: parses and validates a YAML manifest into a [`ToolSpec`].
//!
//! Everything a manifest can get wrong is reported here, once, with the file,
//! the field and the fix; nothing downstream reads the YAML again. Shapes and
//! words are checked while deserializing (unknown fields are errors); facts
//! about the world (files exist, hashes match, capabilities cover the sandbox)
//! are checked right after, against the manifest's own directory.

mod types;

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
/// existed and matched its pin when the manifest was loaded.
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
    /// `spec.parameters`: JSON Schema of the input.
    pub parameters: serde_json::Value,
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
    /// Absolute path of the file.
    pub path: PathBuf,
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
    fn invalid(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError::Invalid {
            file: file.to_path_buf(),
            line: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

// ---- the YAML as written ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    metadata: RawMetadata,
    spec: RawSpec,
    #[serde(default)]
    interface: InterfaceSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: ToolName,
    version: Version,
    #[serde(default)]
    category: Option<String>,
    description: String,
    #[serde(default)]
    author: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    executable: RawExecutable,
    #[serde(default)]
    capabilities: CapabilitySpec,
    #[serde(default)]
    parameters: Option<serde_json::Value>,
    #[serde(default)]
    security: RawSecurity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecutable {
    #[serde(rename = "type")]
    kind: ExecutableKind,
    path: PathBuf,
    #[serde(default)]
    interpreter: Option<String>,
    #[serde(default)]
    sha256: Option<Sha256Hex>,
    #[serde(default)]
    output: Option<OutputFormat>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    level: Option<SecurityLevel>,
    #[serde(default)]
    sandbox: RawSandbox,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSandbox {
    readonly_paths: Vec<DirMapping>,
    writable_paths: Vec<DirMapping>,
    allow_network: bool,
    allowed_hosts: Vec<HostPattern>,
    env: Vec<EnvName>,
    tools: Vec<ToolName>,
    fuel: Option<u64>,
    memory_limit: Option<ByteSize>,
    cpu_limit: Option<Percent>,
    timeout: Option<HumanDuration>,
    output_limit: Option<ByteSize>,
    llm_tokens: Option<u64>,
}

// ---- loading ------------------------------------------------------------

/// Reads, parses and validates the manifest at `path`.
///
/// # Errors
///
/// [`ManifestError::Unreadable`] when the file cannot be read, and
/// [`ManifestError::Invalid`] naming the field and the fix for everything
/// else: bad YAML, unknown fields, bad values, missing files, a pinned hash
/// that does not match, capabilities that do not cover the sandbox.
pub fn load(path: &Path) -> Result<ToolSpec, ManifestError> {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = read_capped(&file)?;
    parse(&file, &text)
}

fn read_capped(file: &Path) -> Result<String, ManifestError> {
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
    validate(file, from_yaml(file, text)?)
}

/// Deserializes YAML text read from `file` into `T`; an error names the
/// file, the line and the field path (`agents[3].input`), like manifest
/// errors do.
///
/// # Errors
///
/// [`ManifestError::Invalid`] for bad YAML or a value of the wrong shape.
pub fn from_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ManifestError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let mut message = inner.to_string();
        if let Some(loc) = inner.location() {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        // serde_yaml prefixes the path it knows; ours is more precise.
        if let Some((head, rest)) = message.split_once(": ")
            && !field.is_empty()
            && field.starts_with(head)
        {
            message = rest.to_string();
        }
        ManifestError::Invalid {
            file: file.to_path_buf(),
            line,
            field,
            message,
        }
    })
}

fn validate(file: &Path, raw: RawManifest) -> Result<ToolSpec, ManifestError> {
    let base = file.parent().unwrap_or(Path::new("/"));
    let RawManifest {
        metadata,
        spec,
        interface,
    } = raw;
    if metadata.description.trim().is_empty() {
        return Err(ManifestError::invalid(
            file,
            "metadata.description",
            "must not be empty: agents read it to decide when to call the tool",
        ));
    }

    let exe = spec.executable;
    let kind = exe.kind;
    let exe_path = clean(base.join(&exe.path));
    let field = "spec.executable.path";
    let meta = std::fs::metadata(&exe_path).map_err(|e| {
        let hint = if kind.is_wasm() {
            "; build the plugins with scripts/build-plugins.sh or fix the path (it is relative to the manifest)"
        } else {
            "; fix the path (it is relative to the manifest)"
        };
        ManifestError::invalid(
            file,
            field,
            format!(
                "{} (resolved to {}) cannot be read: {}{hint}",
                exe.path.display(),
                exe_path.display(),
                io_reason(&e),
            ),
        )
    })?;
    if !meta.is_file() {
        return Err(ManifestError::invalid(
            file,
            field,
            format!("{} is not a regular file", exe_path.display()),
        ));
    }
    if meta.len() > MAX_EXECUTABLE_BYTES {
        return Err(ManifestError::invalid(
            file,
            field,
            format!(
                "{} is {} bytes, over the {} limit for an executable",
                exe_path.display(),
                meta.len(),
                ByteSize(MAX_EXECUTABLE_BYTES)
            ),
        ));
    }
    match (kind, &exe.interpreter) {
        (ExecutableKind::Shell | ExecutableKind::Python, Some(name))
            if name.is_empty() || name.contains('/') =>
        {
            return Err(ManifestError::invalid(
                file,
                "spec.executable.interpreter",
                format!(
                    "`{name}` is not an interpreter name: write a name from the host's allowlist (bash, sh, python3), not a path"
                ),
            ));
        }
        (ExecutableKind::Shell | ExecutableKind::Python, _) | (_, None) => {}
        (_, Some(_)) => {
            return Err(ManifestError::invalid(
                file,
                "spec.executable.interpreter",
                format!(
                    "only shell and python tools have an interpreter; remove it for a `{kind}` tool"
                ),
            ));
        }
    }
    if kind.is_wasm() && exe.output.is_some() {
        return Err(ManifestError::invalid(
            file,
            "spec.executable.output",
            "only shell, python and external tools choose their output format; a wasm tool always returns JSON",
        ));
    }
    let needs_pin = !kind.is_wasm();
    match &exe.sha256 {
        None if needs_pin => {
            return Err(ManifestError::invalid(
                file,
                "spec.executable.sha256",
                format!(
                    "is required for `{kind}` tools, which run outside the wasm sandbox: add `sha256: <digest>` with the digest printed by `sha256sum {}`",
                    exe_path.display()
                ),
            ));
        }
        None => {}
        Some(pin) => {
            let bytes = std::fs::read(&exe_path).map_err(|e| {
                ManifestError::invalid(
                    file,
                    field,
                    format!("{}: {}", exe_path.display(), io_reason(&e)),
                )
            })?;
            let actual = Sha256Hex::of(&bytes);
            if &actual != pin {
                return Err(ManifestError::invalid(
                    file,
                    "spec.executable.sha256",
                    pin_mismatch(file, &exe_path, &actual, pin),
                ));
            }
        }
    }

    let caps = &spec.capabilities;
    for c in &caps.required {
        if caps.optional.contains(c) {
            return Err(ManifestError::invalid(
                file,
                "spec.capabilities",
                format!("`{c}` is listed as both required and optional; keep it in one list"),
            ));
        }
    }
    let declared = caps.declared();
    if kind.is_wasm() && declared.contains(&Capability::ProcessExecution) {
        return Err(ManifestError::invalid(
            file,
            "spec.capabilities",
            "`process-execution` is for shell, python and external tools; a wasm tool cannot start processes",
        ));
    }

    let sandbox = spec.security.sandbox;
    let need = |cap: Capability, field: &str, what: &str| -> Result<(), ManifestError> {
        if declared.contains(&cap) {
            Ok(())
        } else {
            Err(ManifestError::invalid(
                file,
                format!("spec.security.sandbox.{field}"),
                format!(
                    "{what} needs the `{cap}` capability: add it to spec.capabilities.required (or optional)"
                ),
            ))
        }
    };
    if !sandbox.readonly_paths.is_empty() {
        need(
            Capability::FilesystemRead,
            "readonly_paths",
            "reading directories",
        )?;
    }
    if !sandbox.writable_paths.is_empty() {
        need(
            Capability::FilesystemWrite,
            "writable_paths",
            "writing directories",
        )?;
    }
    if sandbox.allow_network {
        need(Capability::NetworkAccess, "allow_network", "network access")?;
    }
    if !sandbox.allowed_hosts.is_empty() && !sandbox.allow_network {
        return Err(ManifestError::invalid(
            file,
            "spec.security.sandbox.allowed_hosts",
            "hosts are listed but allow_network is false; set `allow_network: true` or remove the hosts",
        ));
    }
    if sandbox.allow_network && sandbox.allowed_hosts.is_empty() {
        return Err(ManifestError::invalid(
            file,
            "spec.security.sandbox.allowed_hosts",
            "allow_network is true but no host is listed; list each HOST:PORT the tool may reach",
        ));
    }
    if !sandbox.tools.is_empty() {
        need(Capability::ToolCall, "tools", "calling other tools")?;
    }
    let readonly_paths = resolve_dirs(file, base, "readonly_paths", sandbox.readonly_paths)?;
    let writable_paths = resolve_dirs(file, base, "writable_paths", sandbox.writable_paths)?;

    let positive = |field: &str, zero: bool| -> Result<(), ManifestError> {
        if zero {
            Err(ManifestError::invalid(
                file,
                format!("spec.security.sandbox.{field}"),
                "must be greater than zero; remove the field to use the host's default",
            ))
        } else {
            Ok(())
        }
    };
    positive("fuel", sandbox.fuel == Some(0))?;
    positive("llm_tokens", sandbox.llm_tokens == Some(0))?;
    positive("timeout", sandbox.timeout.is_some_and(|t| t.0.is_zero()))?;
    positive("output_limit", sandbox.output_limit == Some(ByteSize(0)))?;
    if let Some(m) = sandbox.memory_limit
        && m.0 < 64 * 1024
    {
        return Err(ManifestError::invalid(
            file,
            "spec.security.sandbox.memory_limit",
            format!("{m} is less than one wasm page (64KiB); give at least 1MiB"),
        ));
    }

    let parameters = match spec.parameters {
        None => serde_json::json!({ "type": "object" }),
        Some(p) => {
            if p.get("type").and_then(|t| t.as_str()) != Some("object") {
                return Err(ManifestError::invalid(
                    file,
                    "spec.parameters",
                    "must be a JSON Schema with `type: object` (tool input is always a JSON object)",
                ));
            }
            p
        }
    };

    Ok(ToolSpec {
        manifest: file.to_path_buf(),
        name: metadata.name,
        version: metadata.version,
        description: metadata.description.trim().to_string(),
        category: metadata.category,
        author: metadata.author,
        executable: ExecutableSpec {
            kind,
            path: exe_path,
            interpreter: exe.interpreter,
            sha256: exe.sha256,
            output: exe.output.unwrap_or(if kind.is_wasm() {
                OutputFormat::Json
            } else {
                OutputFormat::Text
            }),
        },
        capabilities: spec.capabilities,
        parameters,
        security_level: spec.security.level,
        sandbox: SandboxSpec {
            readonly_paths,
            writable_paths,
            allow_network: sandbox.allow_network,
            allowed_hosts: sandbox.allowed_hosts,
            env: sandbox.env,
            tools: sandbox.tools,
        },
        limits: LimitSettings {
            fuel: sandbox.fuel,
            memory: sandbox.memory_limit,
            timeout: sandbox.timeout,
            output: sandbox.output_limit,
            cpu: sandbox.cpu_limit,
            llm_tokens: sandbox.llm_tokens,
        },
        interface,
    })
}

fn resolve_dirs(
    file: &Path,
    base: &Path,
    field: &str,
    dirs: Vec<DirMapping>,
) -> Result<Vec<DirMapping>, ManifestError> {
    dirs.into_iter()
        .enumerate()
        .map(|(i, d)| {
            let host = clean(base.join(&d.host));
            match std::fs::metadata(&host) {
                Ok(m) if m.is_dir() => Ok(DirMapping {
                    host,
                    guest: d.guest,
                }),
                Ok(_) => Err(ManifestError::invalid(
                    file,
                    format!("spec.security.sandbox.{field}[{i}]"),
                    format!("{} is not a directory; grant directories, not files", host.display()),
                )),
                Err(e) => Err(ManifestError::invalid(
                    file,
                    format!("spec.security.sandbox.{field}[{i}]"),
                    format!(
                        "{} (resolved to {}) cannot be used: {}; create it or fix the path (it is relative to the manifest)",
                        d.host.display(),
                        host.display(),
                        io_reason(&e)
                    ),
                )),
            }
        })
        .collect()
}

/// The message for a file whose digest is not the manifest's pin: both
/// digests and the command that re-vets it.
pub fn pin_mismatch(manifest: &Path, file: &Path, actual: &Sha256Hex, pin: &Sha256Hex) -> String {
    format!(
        "{} has sha256 {actual}, but the manifest pins {pin}; it changed since it was vetted: review it, then run `toka-host tools vet {} --write`",
        file.display(),
        manifest.display()
    )
}

/// `path` without `.` components (`manifests/./data` reads as `manifests/data`).
fn clean(path: PathBuf) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The OS's reason without the "(os error 2)" noise.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

// ---- input ------------------------------------------------------------

/// Checks a tool's input: the top level of `value` against `schema`: an object, with the
/// required properties, each of the declared JSON type. Deeper checks are
/// the tool's job; this catches the mistakes a person makes at a prompt.
pub fn check_input(schema: &serde_json::Value, value: &serde_json::Value) -> Result<(), String> {
    let Some(obj) = value.as_object() else {
        return Err("the input must be a JSON object".into());
    };
    let props = schema.get("properties").and_then(|p| p.as_object());
    if let Some(required) = schema.get("required").and_then(|r| r.as_array()) {
        for key in required.iter().filter_map(|k| k.as_str()) {
            if !obj.contains_key(key) {
                return Err(format!(
                    "the input lacks the required property `{key}`: add --param {key}=... or include it in --input"
                ));
            }
        }
    }
    for (key, v) in obj {
        let Some(want) = props
            .and_then(|p| p.get(key))
            .and_then(|d| d.get("type"))
            .and_then(|t| t.as_str())
        else {
            continue;
        };
        let ok = match want {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "null" => v.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!(
                "input property `{key}` must be of type {want}, not {v}"
            ));
        }
    }
    Ok(())
}

// ---- finding a tool by name ---------------------------------------------

/// Why a tool name could not be turned into a manifest.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No manifest in the directory has that name.
    #[error("no tool named `{name}` in {}{}", dir.display(), known_list(known))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The manifests directory.
        dir: PathBuf,
        /// Tools that are there.
        known: Vec<String>,
    },
    /// The directory could not be read.
    #[error("cannot read the manifests directory {}: {source}; pass --manifests DIR or set TOKA_MANIFESTS", dir.display())]
    Unreadable {
        /// The manifests directory.
        dir: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The manifest that has the name is invalid.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "; it holds no valid manifest".into()
    } else {
        format!("; available: {}", known.join(", "))
    }
}

/// The YAML files of a manifests directory, sorted.
///
/// # Errors
///
/// When the directory cannot be read.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Finds and loads the manifest of tool `name` in `dir`: first `NAME.yaml` /
/// `NAME.yml`, then any manifest whose `metadata.name` is `name`. Invalid
/// manifests of *other* tools do not stop the search.
///
/// # Errors
///
/// [`FindError::NotFound`] listing the tools that are there, or the error of
/// the manifest that has the name.
pub fn find_by_name(dir: &Path, name: &str) -> Result<ToolSpec, FindError> {
    for ext in ["yaml", "yml"] {
        let candidate = dir.join(format!("{name}.{ext}"));
        if candidate.is_file() {
            let spec = load(&candidate)?;
            if spec.name.as_str() == name {
                return Ok(spec);
            }
        }
    }
    let files = manifest_files(dir).map_err(|source| FindError::Unreadable {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut known = Vec::new();
    for f in files {
        match load(&f) {
            Ok(spec) if spec.name.as_str() == name => return Ok(spec),
            Ok(spec) => known.push(spec.name.to_string()),
            Err(e) => {
                // A broken manifest that would have had this name is the
                // error the user needs to see, not "not found".
                let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if stem == name {
                    return Err(e.into());
                }
            }
        }
    }
    known.sort();
    Err(FindError::NotFound {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::check_input;
    use serde_json::json;

    #[test]
    fn input_checks_name_the_property() {
        let schema = json!({"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name"]});
        assert!(check_input(&schema, &json!({"name": "Ada"})).is_ok());
        let e = check_input(&schema, &json!({})).unwrap_err();
        assert!(e.contains("`name`") && e.contains("--param name="), "{e}");
        let e = check_input(&schema, &json!({"name": "x", "n": "3"})).unwrap_err();
        assert!(e.contains("`n`") && e.contains("integer"), "{e}");
        assert!(check_input(&schema, &json!([1])).is_err());
    }
}
