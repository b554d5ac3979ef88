//! Toka tools in OCI registries: [`push`] a component and its manifest YAML
//! as one artifact, [`pull`] it into a local [`ContentStore`] with every byte
//! checked against a digest, and sign and verify it with cosign-compatible
//! keys ([`SigningKey`], [`VerifyingKey`], [`signing_keygen`]).
//!
//! The flow is one way: a [`Reference`] is parsed at the edge; a pull
//! resolves it to a manifest digest, checks the signature (when keys are
//! given) before downloading code, and returns a [`Pulled`] whose files are in
//! the store. Validating the manifest YAML is the caller's job, with Toka's
//! manifest loader; this crate only guarantees it is the YAML that was pushed
//! (and signed) with the code.
//!
//! Registry access ([`RegistryConfig`]) is HTTPS except to loopback or
//! explicitly insecure registries; credentials come from the environment or
//! docker's `config.json`, and never appear in logs or errors.

pub mod artifact;
mod error;
mod keys;
mod pull;
mod push;
mod reference;
mod registry;
pub mod signature;
mod store;

pub use error::{Cause, OciError};
pub use keys::{GeneratedKeys, SigningKey, VerifyingKey, signing_keygen};
pub use pull::{Layer, Progress, Pulled, pull};
pub use push::push;
pub use reference::{DEFAULT_TAG, Reference, ReferenceError, SCHEME};
pub use registry::{Credentials, PASSWORD_ENV, RegistryConfig, USER_ENV};
pub use store::ContentStore;

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI and the server may run a push or a pull on any runtime
    /// thread.
    #[allow(dead_code)]
    fn futures_are_send(r: &Reference, s: &ContentStore, c: &RegistryConfig) {
        fn send<T: Send>(_: T) {}
        send(pull(r, s, c, &[], &|_| {}));
        send(push(r, b"", std::path::Path::new(""), None, c));
    }
}
