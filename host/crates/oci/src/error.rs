//! [`OciError`]: everything a push, a pull, a key file or the local store can
//! get wrong, each with the reference, registry or file it concerns and the
//! fix, and one [`ErrorKind`] from Toka's shared vocabulary.
//!
//! No message ever contains a credential: registry errors keep the request
//! URL and the registry's own error text, and Toka never puts credentials in
//! URLs.

use crate::reference::ReferenceError;
use std::path::PathBuf;
use toka_spec::outcome::ErrorKind;
use toka_spec::units::ByteSize;

/// The underlying cause of a network failure, kept for `{:#}` chains.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a push, a pull or a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The registry could not be reached, or the connection broke.
    #[error("cannot reach registry {registry}{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// What to try (for example `--insecure-registry` for a plain-HTTP
        /// registry), when there is a likely fix.
        hint: Option<String>,
        /// The transport error.
        #[source]
        source: Cause,
    },
    /// The repository, tag or digest does not exist in the registry.
    #[error(
        "{reference} was not found in the registry; check the repository and tag (a tag exists only after a push)"
    )]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("registry {registry} refused access{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// Where credentials were (not) found and how to give them. Never a
        /// credential itself.
        hint: Option<String>,
        /// The registry's answer.
        #[source]
        source: Option<Cause>,
    },
    /// Bytes from the registry are not the ones their digest names.
    #[error(
        "{reference}: the {what} does not match its digest (expected {expected}, got {actual}); the registry served other bytes than were pushed, refusing them"
    )]
    DigestMismatch {
        /// The reference being pulled.
        reference: String,
        /// Which part: `manifest`, `wasm layer`, `manifest YAML layer`, …
        what: String,
        /// What the reference or descriptor says.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// A part of the artifact is over its size limit.
    #[error("{reference}: the {what} is larger than the limit of {}; refusing it", ByteSize(*limit))]
    TooLarge {
        /// The reference being pushed or pulled.
        reference: String,
        /// Which part.
        what: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A signature was required and there is none.
    #[error(
        "{reference} is not signed, but a signature by {keys} is required; sign it with `toka-host push --sign-key cosign.key` (or `cosign sign --key cosign.key`), or pull without --verify-key"
    )]
    Unsigned {
        /// The pinned reference.
        reference: String,
        /// The trusted key files, comma-separated.
        keys: String,
    },
    /// Signatures exist, but none is valid for any trusted key.
    #[error("{reference} has no valid signature by {keys}{}; it was signed with another key, or the signature was tampered with", if *found == 1 { " (1 signature found)".to_string() } else { format!(" ({found} signatures found)") })]
    BadSignature {
        /// The pinned reference.
        reference: String,
        /// The trusted key files, comma-separated.
        keys: String,
        /// How many signatures were examined.
        found: usize,
    },
    /// The artifact is not a Toka tool: wrong media types, a missing or
    /// extra layer, a manifest layer that is not YAML, a file that is not
    /// WebAssembly.
    #[error("{reference} is not a Toka tool artifact: {why}")]
    InvalidArtifact {
        /// The reference (or the file being pushed).
        reference: String,
        /// What is wrong.
        why: String,
    },
    /// A string that is not an `oci://` reference, or one that cannot be used
    /// here.
    #[error(transparent)]
    InvalidReference(#[from] ReferenceError),
    /// A key file that cannot be read, decrypted, parsed or written.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Registry credentials that cannot be used: a docker `config.json`
    /// that does not parse, half of a user/password pair in the environment.
    #[error("registry credentials from {origin}: {reason}")]
    Credentials {
        /// Where they came from: a file, or environment variable names.
        origin: String,
        /// What is wrong and how to fix it. Never a credential.
        reason: String,
    },
    /// A file to push that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The local content store cannot be used.
    #[error("OCI store {}: {source}", path.display())]
    Store {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The registry answered something unexpected (a server error, a
    /// protocol violation).
    #[error("registry {registry} failed: {source}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// Its answer.
        #[source]
        source: Cause,
    },
}

impl OciError {
    /// The error's kind in Toka's shared vocabulary (it decides the CLI's
    /// exit code and the API's status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            OciError::Unreachable { .. } | OciError::Registry { .. } => ErrorKind::Unavailable,
            OciError::NotFound { .. } => ErrorKind::NotFound,
            OciError::Unauthorized { .. } => ErrorKind::Unauthorized,
            OciError::DigestMismatch { .. } => ErrorKind::HashMismatch,
            OciError::TooLarge { .. } => ErrorKind::TooLarge,
            OciError::Unsigned { .. } | OciError::BadSignature { .. } => ErrorKind::Denied,
            OciError::InvalidArtifact { .. }
            | OciError::InvalidReference(_)
            | OciError::KeyFile { .. }
            | OciError::Credentials { .. } => ErrorKind::InvalidInput,
            OciError::Input { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            OciError::Input { .. } => ErrorKind::InvalidInput,
            OciError::Store { .. } => ErrorKind::Host,
        }
    }

    pub(crate) fn store(path: impl Into<PathBuf>, source: std::io::Error) -> OciError {
        OciError::Store {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn key_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> OciError {
        OciError::KeyFile {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reference: impl ToString, why: impl Into<String>) -> OciError {
        OciError::InvalidArtifact {
            reference: reference.to_string(),
            why: why.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_shared_vocabulary() {
        let cases = [
            (
                OciError::NotFound {
                    reference: "oci://h/r:t".into(),
                },
                ErrorKind::NotFound,
            ),
            (
                OciError::Unsigned {
                    reference: "r".into(),
                    keys: "k.pub".into(),
                },
                ErrorKind::Denied,
            ),
            (
                OciError::DigestMismatch {
                    reference: "r".into(),
                    what: "wasm layer".into(),
                    expected: "a".into(),
                    actual: "b".into(),
                },
                ErrorKind::HashMismatch,
            ),
            (
                OciError::Unreachable {
                    registry: "h".into(),
                    hint: None,
                    source: "refused".into(),
                },
                ErrorKind::Unavailable,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
        }
    }
}
