//! How far granted capabilities reach: a manifest's directories must lie in
//! a tree the operator approved for that capability, and its hosts must be
//! covered by an approved pattern. Checked when a tool is loaded (so a
//! manifest asking for more is refused at once, with the grant that would
//! allow it) and again whenever a policy is resolved.
//!
//! Paths are compared canonically (symlinks resolved), so a directory in
//! the manifests folder that links to `/etc` is outside it.

use super::{Grants, PolicyError, Reach};
use crate::manifest::{Capability, HostMatch, HostPattern, ToolSpec};
use std::path::{Path, PathBuf};

/// Checks that every directory and host `spec` asks for, under the
/// capabilities `grants` grant, is within what they reach.
///
/// # Errors
///
/// [`PolicyError::Unapproved`] naming the path or host, the field, what the
/// grant reaches, and the flag that would approve it.
pub fn check_reach(spec: &ToolSpec, grants: &Grants) -> Result<(), PolicyError> {
    let granted = |c: Capability| {
        grants.capabilities.contains(&c)
            && spec.capabilities.declared().contains(&c)
            && grants
                .ceiling
                .as_ref()
                .is_none_or(|ceiling| ceiling.contains(&c))
    };
    let base = spec.manifest.parent().unwrap_or(Path::new("/"));
    let read = granted(Capability::FilesystemRead);
    let write = granted(Capability::FilesystemWrite);
    let sandbox = &spec.sandbox;
    // What the policy will mount: readonly paths with read; writable paths
    // read-write with write, or read-only with read alone.
    let mut dirs: Vec<(&Path, Capability, &'static str)> = Vec::new();
    if read {
        dirs.extend(sandbox.readonly_paths.iter().map(|d| {
            (
                d.host.as_path(),
                Capability::FilesystemRead,
                "readonly_paths",
            )
        }));
    }
    if write || read {
        let cap = if write {
            Capability::FilesystemWrite
        } else {
            Capability::FilesystemRead
        };
        dirs.extend(sandbox.writable_paths.iter().map(|d| {
            (
                d.host.as_path(),
                cap,
                "spec.security.sandbox.writable_paths",
            )
        }));
    }
    for (path, cap, field) in dirs {
        let reach = grants.reach_of(cap);
        if !reach.iter().any(|r| covers_path(r, base, path)) {
            return Err(PolicyError::Unapproved {
                tool: spec.name.to_string(),
                capability: cap,
                what: canonical(path).display().to_string(),
                field,
                reach: describe(&reach, base),
            });
        }
    }
    if granted(Capability::NetworkAccess) && sandbox.allow_network {
        let reach = grants.reach_of(Capability::NetworkAccess);
        for host in &sandbox.allowed_hosts {
            if !reach.iter().any(|r| covers_host(r, host)) {
                return Err(PolicyError::Unapproved {
                    tool: spec.name.to_string(),
                    capability: Capability::NetworkAccess,
                    what: host.to_string(),
                    field: "spec.security.sandbox.allowed_hosts",
                    reach: describe(&reach, base),
                });
            }
        }
    }
    Ok(())
}

/// In words, what `spec` reaches under `grants` once loaded: the
/// directories it reads and writes and the hosts it connects to, for the
/// log line of a tool being loaded (empty when it reaches nothing).
pub fn describe_effective(spec: &ToolSpec, grants: &Grants) -> String {
    let granted = |c: Capability| {
        grants.capabilities.contains(&c) && spec.capabilities.declared().contains(&c)
    };
    let s = &spec.sandbox;
    let paths = |d: &[crate::manifest::DirMapping]| {
        d.iter()
            .map(|m| format!("{}::{}", m.host.display(), m.guest))
            .collect::<Vec<_>>()
    };
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    if granted(Capability::FilesystemRead) {
        reads.extend(paths(&s.readonly_paths));
    }
    if granted(Capability::FilesystemWrite) {
        writes.extend(paths(&s.writable_paths));
    } else if granted(Capability::FilesystemRead) {
        reads.extend(paths(&s.writable_paths));
    }
    let hosts: Vec<String> = if granted(Capability::NetworkAccess) && s.allow_network {
        s.allowed_hosts.iter().map(|h| h.to_string()).collect()
    } else {
        Vec::new()
    };
    [("reads", reads), ("writes", writes), ("connects to", hosts)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(what, v)| format!("{what} {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `path` with symlinks resolved (as it is, when it cannot be resolved: it
/// is then compared as written, and refused unless literally inside).
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

fn covers_path(reach: &Reach, manifest_dir: &Path, path: &Path) -> bool {
    let root = match reach {
        Reach::Manifest => canonical(manifest_dir),
        Reach::Tree(root) => canonical(root),
        Reach::Host(_) => return false,
    };
    canonical(path).starts_with(root)
}

fn covers_host(reach: &Reach, host: &HostPattern) -> bool {
    match reach {
        Reach::Manifest => true,
        Reach::Tree(_) => false,
        Reach::Host(granted) => {
            let host_ok = match (&granted.host, &host.host) {
                (HostMatch::Any, _) => true,
                (g, m) => g == m,
            };
            let port_ok = granted.port.is_none() || granted.port == host.port;
            host_ok && port_ok
        }
    }
}

fn describe(reach: &[Reach], manifest_dir: &Path) -> String {
    if reach.is_empty() {
        return "nothing".into();
    }
    reach
        .iter()
        .map(|r| match r {
            Reach::Manifest => format!("the manifest's directory {}", manifest_dir.display()),
            Reach::Tree(p) => p.display().to_string(),
            Reach::Host(h) => h.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
