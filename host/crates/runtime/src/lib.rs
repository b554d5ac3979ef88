//! Toka's runtime: everything between a loaded tool and its outcome.
//!
//! One call flows one way: [`catalog`] (a manifest's `ToolSpec` → a loaded
//! [`catalog::Tool`]: wasm compiled through the [`engine`]'s cache, or a
//! script's vetted bytes) → [`call`] (the one call path: input check, policy
//! resolution, audit) → [`sandbox`] + [`invoke`] (wasm) or [`shim`]
//! (subprocesses) → an `Outcome`. [`events`] and [`budget`] sit below both
//! sandboxes. Workflows ([`workflow`]) re-enter the call path for their
//! nested calls through a trait; [`agents`] runs many workflows at once;
//! [`llm`] is the host's model client; [`audit`] the audit log; [`remote`]
//! pulls code that manifests name in an OCI registry.

pub mod agents;
pub mod audit;
pub mod budget;
pub mod call;
pub mod catalog;
pub mod engine;
pub mod events;
pub mod invoke;
pub mod llm;
pub mod remote;
pub mod sandbox;
pub mod shim;
pub mod workflow;

pub use toka_spec as spec;
