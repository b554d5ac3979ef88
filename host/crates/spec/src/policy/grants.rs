//! What the operator allows (and, for a caller with a token, what the token
//! allows): capabilities and how far they reach, directories, environment
//! and addresses passed directly, limits, and a calling workflow's remaining
//! budget.

use crate::manifest::{Capability, DirMapping, HostPattern, LimitSettings};
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;

/// What the operator allows, from flags (or, later, server configuration).
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// `--grant CAPABILITY[=SCOPE]`: the capabilities granted in any form.
    pub capabilities: BTreeSet<Capability>,
    /// How far granted capabilities reach (`--grant filesystem-read=/srv`).
    /// A granted capability with no entry here reaches [`Reach::Manifest`].
    pub reach: Vec<(Capability, Reach)>,
    /// The caller's own ceiling when it is not the operator (a token's
    /// capabilities): effective capabilities are also within it.
    pub ceiling: Option<BTreeSet<Capability>>,
    /// `--dir` (writable) and `--ro-dir` (read-only) mappings; relative host
    /// paths are relative to the current directory.
    pub dirs: Vec<DirGrant>,
    /// `--env NAME[=VALUE]`.
    pub env: Vec<EnvGrant>,
    /// `--allow-net HOST:PORT`.
    pub net: Vec<HostPattern>,
    /// `--fuel`, `--memory`, `--timeout`, `--max-output`.
    pub limits: LimitSettings,
    /// What is left of a calling workflow's budget: the call's limits are
    /// bounded by it (a callee never gets more than its caller has left).
    pub within: Option<Remaining>,
}

/// What a caller who is not the operator may use: a verified token's tools
/// and capabilities. The call path checks it for every call the caller
/// makes (a workflow's callees inherit its capability ceiling).
pub trait CallerScope: Send + Sync + std::fmt::Debug {
    /// Who the token was issued to.
    fn subject(&self) -> &str;
    /// A short stable id of the token, for the audit log.
    fn token_id(&self) -> &str;
    /// May the caller call tool `name`?
    fn allows_tool(&self, name: &str) -> bool;
    /// May the caller call every tool (an operator's token)?
    fn allows_all_tools(&self) -> bool;
    /// The capabilities the caller may use.
    fn capabilities(&self) -> &BTreeSet<Capability>;
}

/// How far a granted capability reaches, Deno-style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The bare grant (`--grant filesystem-read`): paths inside the
    /// manifest's own directory (the manifests directory for `serve`), or
    /// for `network-access` the hosts the manifest lists.
    Manifest,
    /// `--grant filesystem-read=PATH` / `filesystem-write=PATH`: that tree
    /// (absolute and canonical).
    Tree(std::path::PathBuf),
    /// `--grant network-access=HOST:PORT`: that pattern.
    Host(HostPattern),
}

impl Grants {
    /// The capability grants of `self` alone (what a workflow's callee gets
    /// of the operator's: never the directories, environment, network or
    /// limits passed for the caller).
    pub fn capabilities_only(&self) -> Grants {
        Grants {
            capabilities: self.capabilities.clone(),
            reach: self.reach.clone(),
            ceiling: self.ceiling.clone(),
            ..Grants::default()
        }
    }

    /// What `capability` reaches: its explicit scopes, or the manifest's own
    /// directory when it was granted bare (or set without a scope).
    pub fn reach_of(&self, capability: Capability) -> Vec<Reach> {
        let r: Vec<Reach> = self
            .reach
            .iter()
            .filter(|(c, _)| *c == capability)
            .map(|(_, r)| r.clone())
            .collect();
        if r.is_empty() && self.capabilities.contains(&capability) {
            vec![Reach::Manifest]
        } else {
            r
        }
    }
}

/// What is left of a calling workflow's budget when it calls a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remaining {
    /// Fuel the caller had left when it entered the host.
    pub fuel: u64,
    /// Time until the caller's deadline.
    pub time: Duration,
    /// Output bytes the caller may still write.
    pub output: u64,
}

/// Which limits of a call are a caller's remaining budget rather than the
/// tool's own (set when [`Grants::within`] bounded them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BoundBy {
    /// Fuel.
    pub fuel: bool,
    /// Wall time.
    pub time: bool,
    /// Output bytes.
    pub output: bool,
}

impl BoundBy {
    /// True when `limit` tripped at a bound the caller set.
    pub fn covers(&self, limit: &crate::outcome::LimitExceeded) -> bool {
        use crate::outcome::LimitExceeded as L;
        match limit {
            L::Fuel { .. } => self.fuel,
            L::Timeout { .. } => self.time,
            L::Output { .. } => self.output,
            _ => false,
        }
    }
}

/// A directory the operator grants directly.
#[derive(Clone, Debug)]
pub struct DirGrant {
    /// Host and guest paths.
    pub mapping: DirMapping,
    /// Whether the guest may write.
    pub writable: bool,
}

/// An environment variable the operator passes.
#[derive(Clone, Debug)]
pub enum EnvGrant {
    /// `--env NAME`: the host's value, if it has one.
    Inherit(String),
    /// `--env NAME=VALUE`.
    Set(String, String),
}
