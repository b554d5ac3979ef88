//! Validation of a parsed manifest against its own directory: files exist,
//! capabilities cover what the sandbox section asks for, limits are sane.

use super::raw::RawManifest;
use super::{
    Capability, DirMapping, ExecutableKind, ExecutableSpec, LimitSettings, MAX_EXECUTABLE_BYTES,
    ManifestError, OutputFormat, SandboxSpec, Schema, ToolSpec, clean, io_reason,
};
use crate::units::ByteSize;
use std::path::{Path, PathBuf};

/// How a manifest is read: what is checked and where its files are.
#[derive(Debug, Default)]
pub(super) struct Options {
    /// Non-wasm tools must pin their file's digest (every load except vetting).
    pub require_pin: bool,
    /// The code arrived with the manifest (pulled from a registry): run this
    /// file whatever `spec.executable.path` says.
    pub executable: Option<PathBuf>,
    /// Relative sandbox paths are relative to this directory instead of the
    /// manifest's own.
    pub base: Option<PathBuf>,
}

pub(super) fn validate(
    file: &Path,
    raw: RawManifest,
    options: &Options,
) -> Result<ToolSpec, ManifestError> {
    let base = options
        .base
        .as_deref()
        .unwrap_or_else(|| file.parent().unwrap_or(Path::new("/")));
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
    let field = "spec.executable.path";
    let written = exe.path.to_string_lossy().to_string();
    let remote = if options.executable.is_none() && written.starts_with("oci://") {
        if !kind.is_wasm() {
            return Err(ManifestError::invalid(
                file,
                field,
                format!("a `{kind}` tool runs a local file; only wasm tools come from a registry"),
            ));
        }
        let pinned = written
            .rsplit_once("@sha256:")
            .is_some_and(|(_, hex)| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !pinned {
            return Err(ManifestError::invalid(
                file,
                field,
                format!(
                    "`{written}` names no digest: a manifest pins the code it runs, so write oci://HOST/REPO@sha256:<64 hex digits> (`toka-host push` prints it)"
                ),
            ));
        }
        Some(written.clone())
    } else {
        None
    };
    let exe_path = match (&options.executable, &remote) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => std::path::PathBuf::new(),
        (None, None) => clean(file.parent().unwrap_or(Path::new("/")).join(&exe.path)),
    };
    if remote.is_none() {
        check_executable(file, &exe.path, &exe_path, kind)?;
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
    if options.require_pin && !kind.is_wasm() && exe.sha256.is_none() {
        return Err(ManifestError::invalid(
            file,
            "spec.executable.sha256",
            format!(
                "is required for `{kind}` tools, which run outside the wasm sandbox: add `sha256: <digest>` with the digest printed by `sha256sum {}`",
                exe_path.display()
            ),
        ));
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
    let schema = |field: &str, json| {
        Schema::compile(json).map_err(|e| {
            let field = if e.path.is_empty() {
                field.to_string()
            } else {
                format!("{field}.{}", e.path)
            };
            // The schema compiler quotes the schema's values: cut long ones
            // (fuzz finding 6, docs/RELIABILITY.md).
            ManifestError::invalid(file, field, super::yaml::shorten_quoted(&e.message))
        })
    };
    let parameters = schema("spec.parameters", parameters)?;
    let output = match spec.output {
        None => None,
        Some(o) if o.get("type").and_then(|t| t.as_str()) != Some("object") => {
            return Err(ManifestError::invalid(
                file,
                "spec.output",
                "must be a JSON Schema with `type: object` (MCP clients take structured output as an object); remove it if the tool's output has no fixed shape",
            ));
        }
        Some(o) => Some(schema("spec.output", o)?),
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
            remote,
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
        output,
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

/// The executable a manifest names exists, is a regular file and is not
/// larger than the host takes.
fn check_executable(
    file: &Path,
    written: &Path,
    exe_path: &Path,
    kind: ExecutableKind,
) -> Result<(), ManifestError> {
    let field = "spec.executable.path";
    let meta = std::fs::metadata(exe_path).map_err(|e| {
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
                written.display(),
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
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Finding 6 of docs/RELIABILITY.md: the JSON Schema compiler quotes
    /// the value it refuses; a long one comes back cut, not whole.
    #[test]
    fn a_long_invalid_schema_value_is_quoted_shortened() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.wasm"), b"\0asm").expect("wasm");
        let long = "x".repeat(300);
        let text = format!(
            "metadata: {{ name: t, version: 1.0.0, description: d }}\n\
             spec:\n  executable: {{ type: component, path: t.wasm }}\n\
             \x20 parameters: {{ type: object, properties: {{ a: {{ type: {long} }} }} }}\n"
        );
        let file = dir.path().join("t.yaml");
        std::fs::write(&file, &text).expect("manifest");
        let e = crate::manifest::parse(&file, &text).expect_err("an invalid schema");
        let message = e.to_string();
        assert!(message.contains("spec.parameters"), "{message}");
        assert!(!message.contains(&long), "the value is cut: {message}");
        assert!(message.contains('…'), "{message}");
        assert!(message.len() < 600, "{} bytes: {message}", message.len());
    }
}
