//! End-to-end tests: the real `toka-host` binary against the real plugins
//! (built from source by scripts/build-plugins.sh), one module per concern.

mod cache;
mod conformance;
mod deploy;
mod errors;
mod escapes;
mod guides;
mod harness;
mod languages;
mod limits;
mod manifest_ui;
mod mcp;
mod network;
mod new;
mod oci;
mod registry;
mod serve;
mod shim;
mod store;
mod tokens;
mod tools;
mod workflows;
