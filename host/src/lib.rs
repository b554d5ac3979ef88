//! Toka host: runs agent tools as WebAssembly components in capability-scoped,
//! resource-limited sandboxes.
//!
//! One call flows one way through one module per stage:
//! [`manifest`] (YAML → [`manifest::ToolSpec`]) → [`policy`] (spec + operator
//! grants → [`policy::Policy`]) → [`sandbox`] (policy → WASI context, store,
//! limits) → [`invoke`] (compiled plugin + sandbox + input →
//! [`outcome::Outcome`]). [`engine`] owns the one wasmtime engine and the
//! compile cache; [`cli`] maps flags onto all of it.
//!
//! Workflows add a run context ([`workflow`]): the tools a workflow calls
//! run through the same stages in their own sandboxes, its model requests go
//! through [`llm`], and [`agents`] runs many workflows at once.

pub mod agents;
pub mod audit;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod invoke;
pub mod llm;
pub mod manifest;
pub mod outcome;
pub mod policy;
pub mod registry;
pub mod sandbox;
pub mod server;
pub mod shim;
pub mod units;
pub mod workflow;
