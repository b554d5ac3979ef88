//! Toka's vocabulary, without a runtime: tool manifests ([`manifest`]) and
//! the directories that hold them ([`directory`]), the quantities they use
//! ([`units`]), what one call may touch and spend ([`policy`]), and what a
//! call produced ([`outcome`]), with the one error-kind vocabulary and the
//! exit codes every front end shares ([`outcome::ErrorKind`], [`exit`]).
//!
//! Nothing here depends on wasmtime: an embedder or a linter can read and
//! check manifests and policies without compiling a WebAssembly engine.

pub mod directory;
pub mod exit;
pub mod json;
pub mod manifest;
pub mod outcome;
pub mod policy;
pub mod units;
