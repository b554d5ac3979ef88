//! Policy: what one call may touch and spend, resolved from a tool's manifest
//! (what it asks for) and the operator's grants (what they allow).
//!
//! Deny by default: a capability is effective only when the manifest declares
//! it *and* the operator grants it, and a required capability that is not
//! granted refuses the call before anything runs. Directories, environment
//! and network addresses the operator passes directly (`--dir`, `--env`,
//! `--allow-net`) are grants in themselves. Nothing here knows about wasmtime.

mod grants;
mod net;
mod reach;

pub use grants::{BoundBy, CallerScope, DirGrant, EnvGrant, Grants, Reach, Remaining};
pub use net::{AddrRule, NetworkPolicy};
pub use reach::{check_reach, describe_effective};

use crate::manifest::{Capability, DirMapping, HostPattern, LimitSettings, ToolSpec};
use crate::units::{ByteSize, HumanDuration};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// Limits used when neither the manifest nor a flag sets them.
pub const DEFAULT_LIMITS: Limits = Limits {
    // About 25–30 s of a tight loop on a current x86 core (measured ~15e9
    // units/s), so that the default timeout, not fuel, ends a busy call;
    // fuel is the bound that does not depend on the machine.
    fuel: 400_000_000_000,
    memory: 256 << 20,
    timeout: Duration::from_secs(30),
    output: 16 << 20,
    cpu_percent: None,
    table_elements: 100_000,
    instances: 64,
    tables: 64,
    memories: 16,
    llm_tokens: 100_000,
};

/// Everything one call may touch and spend. Built by [`resolve`] only.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    /// Tool name (or the file name of a bare `.wasm`).
    pub tool: String,
    /// Effective capabilities.
    pub capabilities: BTreeSet<Capability>,
    /// Directories visible in the sandbox.
    pub preopens: Vec<Preopen>,
    /// The guest's whole environment.
    pub env: Vec<(String, String)>,
    /// Where the guest may connect.
    pub network: NetworkPolicy,
    /// What the call may spend.
    pub limits: Limits,
    /// Which of `limits` are a calling workflow's remaining budget.
    pub bound: BoundBy,
}

/// A directory visible in the sandbox.
#[derive(Clone, Debug, Serialize)]
pub struct Preopen {
    /// Absolute host path.
    pub host: PathBuf,
    /// Path seen by the guest.
    pub guest: String,
    /// False means read-only: no create, write, truncate, rename or link.
    pub writable: bool,
}

/// What one call may spend. Every call has all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Fuel: roughly one unit per wasm instruction.
    pub fuel: u64,
    /// Bytes of linear memory, all memories together.
    pub memory: u64,
    /// Wall-clock time of the whole call.
    pub timeout: Duration,
    /// Bytes written to stdout, stderr and logs plus the result.
    pub output: u64,
    /// CPU share for subprocess tools, in percent of one core.
    pub cpu_percent: Option<u32>,
    /// Elements of all tables together.
    pub table_elements: usize,
    /// Wasm instances (core modules instantiated by a component count).
    pub instances: usize,
    /// Tables.
    pub tables: usize,
    /// Linear memories.
    pub memories: usize,
    /// Language-model tokens (input plus output) a workflow run may spend,
    /// nested workflows included.
    pub llm_tokens: u64,
}

impl Limits {
    /// `settings` where set, else these limits.
    pub fn with(self, settings: LimitSettings) -> Limits {
        Limits {
            fuel: settings.fuel.unwrap_or(self.fuel),
            memory: settings.memory.map_or(self.memory, |m| m.0),
            timeout: settings.timeout.map_or(self.timeout, |t| t.0),
            output: settings.output.map_or(self.output, |o| o.0),
            cpu_percent: settings.cpu.map(|c| c.0).or(self.cpu_percent),
            llm_tokens: settings.llm_tokens.unwrap_or(self.llm_tokens),
            ..self
        }
    }

    /// These limits, none above what `remaining` allows: the arithmetic of a
    /// nested call's budget. Also says which limits the bound lowered.
    pub fn bounded_by(self, remaining: Remaining) -> (Limits, BoundBy) {
        let bound = BoundBy {
            fuel: remaining.fuel < self.fuel,
            time: remaining.time < self.timeout,
            output: remaining.output < self.output,
        };
        let limits = Limits {
            // A callee gets at least one unit (or byte) so that it fails on
            // its own first step with the right error, not on setup.
            fuel: self.fuel.min(remaining.fuel.max(1)),
            timeout: self.timeout.min(remaining.time),
            output: self.output.min(remaining.output.max(1)),
            ..self
        };
        (limits, bound)
    }

    /// One line for `--help` and docs.
    pub fn describe(&self) -> String {
        format!(
            "fuel {}, memory {}, timeout {}, output {}",
            self.fuel,
            ByteSize(self.memory),
            HumanDuration(self.timeout),
            ByteSize(self.output)
        )
    }
}

/// Why a policy could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The manifest requires capabilities the operator (or the caller's
    /// token) did not grant.
    #[error("tool `{tool}` requires {}, which {} not granted{}: {}; {}",
        missing.iter().map(|m| format!("capability `{}`", m.capability)).collect::<Vec<_>>().join(" and "),
        if missing.len() == 1 { "is" } else { "are" },
        if *by_token { " by this token" } else { "" },
        missing.iter().map(|m| format!("`{}` {}", m.capability, m.purpose)).collect::<Vec<_>>().join("; "),
        if *by_token {
            format!("ask the operator for a token with `{}`", missing.iter().map(|m| format!("--grant {}", m.capability)).collect::<Vec<_>>().join(" "))
        } else {
            format!("rerun with `{}` if you trust it with that", missing.iter().map(|m| format!("--grant {}", m.capability)).collect::<Vec<_>>().join(" "))
        })]
    Denied {
        /// The tool.
        tool: String,
        /// What is missing and what for.
        missing: Vec<MissingCapability>,
        /// True when the operator grants them but the caller's token does
        /// not.
        by_token: bool,
    },
    /// A manifest or a grant tried to pass an LLM key into the sandbox.
    #[error(
        "refusing to pass {name} into the sandbox of `{tool}` ({origin}): provider keys stay in the host; a workflow asks the model through llm.complete, which adds the key itself"
    )]
    Secret {
        /// The tool.
        tool: String,
        /// The variable.
        name: String,
        /// Which field or flag asked for it.
        origin: &'static str,
    },
    /// A manifest asks for a directory or host beyond what the grant
    /// reaches.
    #[error(
        "tool `{tool}` asks for {what} ({field}), which `--grant {capability}` does not reach here (it reaches {reach}); approve it with `--grant {capability}={what}` if you trust the tool with it"
    )]
    Unapproved {
        /// The tool.
        tool: String,
        /// The capability.
        capability: Capability,
        /// The path (canonical) or host pattern.
        what: String,
        /// The manifest field that asks for it.
        field: &'static str,
        /// What the grant reaches.
        reach: String,
    },
    /// The caller's token does not allow the tool at all.
    #[error(
        "this token does not allow tool `{tool}`; ask the operator for a token that names it (`toka-host token issue --tool {tool}`)"
    )]
    NotInScope {
        /// The tool.
        tool: String,
    },
    /// A directory grant cannot be used.
    #[error("{flag} {}: {reason}", path.display())]
    BadDir {
        /// `--dir` or `--ro-dir`.
        flag: &'static str,
        /// The host path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    /// The error's kind: `denied` for a capability not granted, else
    /// `invalid-input` (a key asked for, a directory that cannot be granted).
    pub fn kind(&self) -> crate::outcome::ErrorKind {
        match self {
            PolicyError::Denied { .. }
            | PolicyError::Unapproved { .. }
            | PolicyError::NotInScope { .. } => crate::outcome::ErrorKind::Denied,
            PolicyError::Secret { .. } | PolicyError::BadDir { .. } => {
                crate::outcome::ErrorKind::InvalidInput
            }
        }
    }
}

/// Environment variables that hold a language-model provider's key. They
/// are read by the host only and never enter a sandbox, whoever asks.
pub const LLM_KEY_VARS: [&str; 3] = ["TOKA_LLM_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

/// A capability the manifest requires and the operator did not grant.
#[derive(Debug, Clone)]
pub struct MissingCapability {
    /// The capability.
    pub capability: Capability,
    /// What the tool would use it for, from its manifest.
    pub purpose: String,
}

/// Resolves what a call of `spec` (or of a bare `.wasm` when `None`) may do,
/// given the operator's `grants`. `host_env` looks up the host's environment,
/// for the variables passed through by name.
///
/// # Errors
///
/// [`PolicyError::Denied`] when a required capability is not granted (by
/// the operator, or by the caller's ceiling); [`PolicyError::Unapproved`]
/// when the manifest's directories or hosts are beyond what the grants
/// reach; [`PolicyError::BadDir`] when a granted directory does not exist.
pub fn resolve(
    tool: &str,
    spec: Option<&ToolSpec>,
    grants: &Grants,
    host_env: impl Fn(&str) -> Option<String>,
) -> Result<Policy, PolicyError> {
    let mut capabilities = BTreeSet::new();
    let mut preopens = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut allow: Vec<HostPattern> = Vec::new();
    let mut limits = DEFAULT_LIMITS;

    if let Some(spec) = spec {
        let missing_from = |set: &BTreeSet<Capability>| -> Vec<MissingCapability> {
            spec.capabilities
                .required
                .iter()
                .filter(|c| !set.contains(c))
                .map(|&capability| MissingCapability {
                    capability,
                    purpose: purpose(spec, capability),
                })
                .collect()
        };
        let missing = missing_from(&grants.capabilities);
        if !missing.is_empty() {
            return Err(PolicyError::Denied {
                tool: spec.name.to_string(),
                missing,
                by_token: false,
            });
        }
        if let Some(ceiling) = &grants.ceiling {
            let missing = missing_from(ceiling);
            if !missing.is_empty() {
                return Err(PolicyError::Denied {
                    tool: spec.name.to_string(),
                    missing,
                    by_token: true,
                });
            }
        }
        check_reach(spec, grants)?;
        capabilities = spec
            .capabilities
            .declared()
            .intersection(&grants.capabilities)
            .filter(|c| {
                grants
                    .ceiling
                    .as_ref()
                    .is_none_or(|ceiling| ceiling.contains(c))
            })
            .copied()
            .collect();
        let sandbox = &spec.sandbox;
        if capabilities.contains(&Capability::FilesystemRead) {
            preopens.extend(sandbox.readonly_paths.iter().map(|d| Preopen {
                host: d.host.clone(),
                guest: d.guest.clone(),
                writable: false,
            }));
        }
        if capabilities.contains(&Capability::FilesystemWrite) {
            preopens.extend(sandbox.writable_paths.iter().map(|d| Preopen {
                host: d.host.clone(),
                guest: d.guest.clone(),
                writable: true,
            }));
        } else if capabilities.contains(&Capability::FilesystemRead) {
            // Readable, not writable: what a tool may read it may read anywhere
            // it was given.
            preopens.extend(sandbox.writable_paths.iter().map(|d| Preopen {
                host: d.host.clone(),
                guest: d.guest.clone(),
                writable: false,
            }));
        }
        if capabilities.contains(&Capability::NetworkAccess) && sandbox.allow_network {
            allow.extend(sandbox.allowed_hosts.iter().cloned());
        }
        for name in &sandbox.env {
            if LLM_KEY_VARS.contains(&name.as_str()) {
                return Err(PolicyError::Secret {
                    tool: tool.to_string(),
                    name: name.as_str().to_string(),
                    origin: "spec.security.sandbox.env",
                });
            }
            if let Some(v) = host_env(name.as_str()) {
                env.push((name.as_str().to_string(), v));
            }
        }
        limits = limits.with(spec.limits);
    }

    for g in &grants.dirs {
        let flag = if g.writable { "--dir" } else { "--ro-dir" };
        let host = std::path::absolute(&g.mapping.host).map_err(|e| PolicyError::BadDir {
            flag,
            path: g.mapping.host.clone(),
            reason: e.to_string(),
        })?;
        if !host.is_dir() {
            return Err(PolicyError::BadDir {
                flag,
                path: g.mapping.host.clone(),
                reason: "not an existing directory".into(),
            });
        }
        preopens.push(Preopen {
            host,
            guest: g.mapping.guest.clone(),
            writable: g.writable,
        });
    }
    for e in &grants.env {
        let (k, v) = match e {
            EnvGrant::Inherit(k) => match host_env(k) {
                Some(v) => (k.clone(), v),
                None => continue,
            },
            EnvGrant::Set(k, v) => (k.clone(), v.clone()),
        };
        if LLM_KEY_VARS.contains(&k.as_str()) {
            return Err(PolicyError::Secret {
                tool: tool.to_string(),
                name: k,
                origin: "--env",
            });
        }
        env.retain(|(existing, _)| *existing != k);
        env.push((k, v));
    }
    allow.extend(grants.net.iter().cloned());
    limits = limits.with(grants.limits);
    let mut bound = BoundBy::default();
    if let Some(remaining) = grants.within {
        (limits, bound) = limits.bounded_by(remaining);
    }

    Ok(Policy {
        tool: tool.to_string(),
        capabilities,
        preopens,
        env,
        network: NetworkPolicy::resolve(allow),
        limits,
        bound,
    })
}

/// What a manifest would use `capability` for, in words for an error message.
fn purpose(spec: &ToolSpec, capability: Capability) -> String {
    let dirs = |d: &[DirMapping]| {
        d.iter()
            .map(|m| m.host.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let s = &spec.sandbox;
    match capability {
        Capability::FilesystemRead if !s.readonly_paths.is_empty() => {
            format!("reads {}", dirs(&s.readonly_paths))
        }
        Capability::FilesystemWrite if !s.writable_paths.is_empty() => {
            format!("writes {}", dirs(&s.writable_paths))
        }
        Capability::NetworkAccess if !s.allowed_hosts.is_empty() => format!(
            "connects to {}",
            s.allowed_hosts
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Capability::ToolCall if !s.tools.is_empty() => format!(
            "calls {}",
            s.tools
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Capability::Llm => "asks the operator's language model".into(),
        Capability::ProcessExecution => "starts processes".into(),
        _ => "is declared by the manifest".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn spec(yaml_sandbox: &str, caps: &str) -> (tempfile::TempDir, ToolSpec) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.wasm"), b"\0asm").expect("write");
        std::fs::create_dir(dir.path().join("data")).expect("mkdir");
        let text = format!(
            "metadata: {{ name: t, version: 1.0.0, description: test }}\n\
             spec:\n  executable: {{ type: component, path: t.wasm }}\n  capabilities: {caps}\n\
             \x20 security:\n    sandbox: {yaml_sandbox}\n"
        );
        let spec = manifest::parse(&dir.path().join("t.yaml"), &text).expect("valid manifest");
        (dir, spec)
    }

    fn grants(caps: &[Capability]) -> Grants {
        Grants {
            capabilities: caps.iter().copied().collect(),
            ..Grants::default()
        }
    }

    #[test]
    fn required_capability_not_granted_is_denied_with_the_fix() {
        let (_d, s) = spec(
            "{ readonly_paths: [./data] }",
            "{ required: [filesystem-read] }",
        );
        let err = resolve("t", Some(&s), &grants(&[]), |_| None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PolicyError::Denied { .. }));
        assert!(
            msg.contains("`filesystem-read`") && msg.contains("--grant filesystem-read"),
            "{msg}"
        );
        assert!(msg.contains("data"), "names what it would read: {msg}");
    }

    #[test]
    fn capabilities_are_the_intersection() {
        let (_d, s) = spec(
            "{ readonly_paths: [./data], allow_network: true, allowed_hosts: ['127.0.0.1:80'] }",
            "{ required: [filesystem-read], optional: [network-access] }",
        );
        let p = resolve(
            "t",
            Some(&s),
            &grants(&[Capability::FilesystemRead, Capability::Llm]),
            |_| None,
        )
        .expect("granted");
        assert_eq!(
            p.capabilities,
            [Capability::FilesystemRead].into_iter().collect()
        );
        assert_eq!(p.preopens.len(), 1);
        assert!(!p.preopens[0].writable);
        assert!(
            p.network.is_closed(),
            "optional network not granted stays off"
        );
    }

    #[test]
    fn env_passes_only_named_variables() {
        let (_d, s) = spec("{ env: [LANG] }", "{}");
        let host = |k: &str| match k {
            "LANG" => Some("C.UTF-8".to_string()),
            "SECRET" => Some("hunter2".to_string()),
            _ => None,
        };
        let p = resolve("t", Some(&s), &Grants::default(), host).expect("ok");
        assert_eq!(p.env, vec![("LANG".to_string(), "C.UTF-8".to_string())]);
    }

    #[test]
    fn flags_override_manifest_limits_which_override_defaults() {
        let (_d, s) = spec("{ fuel: 1000, timeout: 2s }", "{}");
        let mut g = Grants::default();
        g.limits.timeout = Some(HumanDuration(Duration::from_millis(500)));
        let p = resolve("t", Some(&s), &g, |_| None).expect("ok");
        assert_eq!(p.limits.fuel, 1000);
        assert_eq!(p.limits.timeout, Duration::from_millis(500));
        assert_eq!(p.limits.memory, DEFAULT_LIMITS.memory);
    }

    #[test]
    fn a_bare_grant_reaches_the_manifests_directory_only() {
        let outside = tempfile::tempdir().expect("outside");
        let (_d, s) = spec(
            &format!(
                "{{ readonly_paths: ['./data', '{}::/x'] }}",
                outside.path().display()
            ),
            "{ required: [filesystem-read] }",
        );
        let err = resolve(
            "t",
            Some(&s),
            &grants(&[Capability::FilesystemRead]),
            |_| None,
        )
        .expect_err("outside the manifest's directory");
        let msg = err.to_string();
        assert!(matches!(err, PolicyError::Unapproved { .. }), "{msg}");
        let canonical = outside.path().canonicalize().expect("canonical");
        assert!(
            msg.contains(&format!("--grant filesystem-read={}", canonical.display())),
            "names the grant that would allow it: {msg}"
        );
        assert!(msg.contains("readonly_paths"), "{msg}");
        let mut g = grants(&[Capability::FilesystemRead]);
        g.reach = vec![
            (Capability::FilesystemRead, Reach::Manifest),
            (Capability::FilesystemRead, Reach::Tree(canonical)),
        ];
        let p = resolve("t", Some(&s), &g, |_| None).expect("approved");
        assert_eq!(p.preopens.len(), 2);
        // An explicit tree alone does not reach the manifest's directory.
        g.reach.remove(0);
        assert!(resolve("t", Some(&s), &g, |_| None).is_err());
    }

    #[test]
    fn a_symlink_out_of_the_manifests_directory_is_outside_it() {
        let outside = tempfile::tempdir().expect("outside");
        let (d, s) = {
            let dir = tempfile::tempdir().expect("tempdir");
            std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).expect("symlink");
            std::fs::write(dir.path().join("t.wasm"), b"\0asm").expect("write");
            let text = "metadata: { name: t, version: 1.0.0, description: test }\n\
                        spec:\n  executable: { type: component, path: t.wasm }\n  capabilities: { required: [filesystem-read] }\n\
                        \x20 security:\n    sandbox: { readonly_paths: [./escape] }\n";
            let spec = manifest::parse(&dir.path().join("t.yaml"), text).expect("valid");
            (dir, spec)
        };
        let err = resolve(
            "t",
            Some(&s),
            &grants(&[Capability::FilesystemRead]),
            |_| None,
        )
        .expect_err("the link leads outside");
        assert!(matches!(err, PolicyError::Unapproved { .. }), "{err}");
        drop(d);
    }

    #[test]
    fn network_grants_cover_the_manifests_hosts() {
        let (_d, s) = spec(
            "{ allow_network: true, allowed_hosts: ['api.example.com:443'] }",
            "{ required: [network-access] }",
        );
        let host = |p: &str| Reach::Host(p.parse().expect("pattern"));
        let mut g = grants(&[Capability::NetworkAccess]);
        assert!(resolve("t", Some(&s), &g, |_| None).is_ok(), "bare grant");
        for (pattern, ok) in [
            ("api.example.com:443", true),
            ("*:443", true),
            ("*:*", true),
            ("api.example.com:80", false),
            ("other.example.com:443", false),
        ] {
            g.reach = vec![(Capability::NetworkAccess, host(pattern))];
            assert_eq!(
                resolve("t", Some(&s), &g, |_| None).is_ok(),
                ok,
                "{pattern}"
            );
        }
    }

    #[test]
    fn a_token_ceiling_narrows_and_says_so() {
        let (_d, s) = spec(
            "{ readonly_paths: [./data] }",
            "{ required: [filesystem-read], optional: [llm] }",
        );
        let mut g = grants(&[Capability::FilesystemRead, Capability::Llm]);
        g.ceiling = Some([Capability::FilesystemRead].into_iter().collect());
        let p = resolve("t", Some(&s), &g, |_| None).expect("ok");
        assert_eq!(
            p.capabilities,
            [Capability::FilesystemRead].into_iter().collect(),
            "the optional capability outside the token is dropped"
        );
        g.ceiling = Some(BTreeSet::new());
        let err = resolve("t", Some(&s), &g, |_| None).expect_err("not in the token");
        assert!(
            matches!(err, PolicyError::Denied { by_token: true, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("by this token"), "{err}");
    }

    #[test]
    fn a_nested_call_gets_at_most_what_the_caller_has_left() {
        let (_d, s) = spec("{ fuel: 1000, timeout: 2s }", "{}");
        let within = Remaining {
            fuel: 400,
            time: Duration::from_secs(5),
            output: 10,
        };
        let g = Grants {
            within: Some(within),
            ..Grants::default()
        };
        let p = resolve("t", Some(&s), &g, |_| None).expect("ok");
        assert_eq!(p.limits.fuel, 400);
        assert_eq!(p.limits.timeout, Duration::from_secs(2), "its own is less");
        assert_eq!(p.limits.output, 10);
        assert_eq!(
            p.bound,
            BoundBy {
                fuel: true,
                time: false,
                output: true
            }
        );
        let (l, _) = DEFAULT_LIMITS.bounded_by(Remaining {
            fuel: 0,
            time: Duration::ZERO,
            output: 0,
        });
        assert_eq!((l.fuel, l.output), (1, 1), "never a zero budget");
    }

    #[test]
    fn bare_wasm_gets_nothing_but_what_flags_grant() {
        let p = resolve("x.wasm", None, &Grants::default(), |_| Some("leak".into())).expect("ok");
        assert!(p.preopens.is_empty() && p.env.is_empty() && p.network.is_closed());
        assert_eq!(p.limits, DEFAULT_LIMITS);
    }
}
