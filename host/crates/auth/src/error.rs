//! Why a token, a key or a request was refused: one error type for the
//! whole crate, each variant with the fields a caller needs to report it and
//! a message that says what to do.
//!
//! No message contains a token or key material: at most a token's id (the
//! first hex digits of a revocation id, which is public), a key id, a path.

use crate::time::Rfc3339;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use toka_spec::outcome::ErrorKind;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token: send it as `Authorization: Bearer TOKEN`")]
    Missing,
    /// The text is not a token this host can read.
    #[error("the token is malformed ({reason}); present it exactly as `token issue` printed it")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token is longer than a verifier reads.
    #[error(
        "the token is {size} bytes long, over the limit of {max}: attenuate from a shorter token"
    )]
    TooLarge {
        /// Its length, in bytes of base64.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The token has more blocks than a verifier evaluates.
    #[error(
        "the token has {count} blocks, over the limit of {max}: attenuate from a less attenuated token"
    )]
    TooManyBlocks {
        /// Its number of blocks (the authority block and each attenuation).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature does not match: the token was changed after signing.
    #[error("the token's signature does not verify: it was altered or corrupted")]
    BadSignature,
    /// The token names a root key that is not in the verifier's key ring.
    #[error(
        "the token is signed by key {id}, which this server does not have: the key was retired, or the token is for another server"
    )]
    UnknownKey {
        /// The key id the token names.
        id: u32,
    },
    /// The token (or one of its attenuations) has expired.
    #[error("the token expired at {}: ask for a new one", Rfc3339(*at))]
    Expired {
        /// When.
        at: SystemTime,
    },
    /// One of the token's revocation ids is in the revocation file.
    #[error("token {token_id} has been revoked (it, or a token it was attenuated from)")]
    Revoked {
        /// The token's id (see [`crate::Scope::token_id`]).
        token_id: String,
    },
    /// The token was issued for another audience.
    #[error(
        "the token is for audience `{found}`, not `{expected}`: ask for a token issued for audience `{expected}`"
    )]
    WrongAudience {
        /// This verifier's audience.
        expected: String,
        /// The token's audience.
        found: String,
    },
    /// Evaluating the token's checks hit a run limit; the token is refused
    /// rather than half-evaluated.
    #[error(
        "the token's checks ran past the evaluation limits ({limit}): attenuate from a simpler token"
    )]
    RunLimit {
        /// Which limit.
        limit: biscuit_auth::error::RunLimit,
    },

    /// A subject, audience or tool name that cannot go in a token.
    #[error("{field} `{value}` cannot go in a token: {why}")]
    BadName {
        /// `subject`, `audience` or `tools`.
        field: &'static str,
        /// The value given (only ever operator input, never a token).
        value: String,
        /// What to write instead.
        why: &'static str,
    },
    /// A token must name at least one tool.
    #[error("a token needs at least one tool: name the tools it may call, or `*` for all")]
    NoTools,
    /// A time to live out of range.
    #[error("a time to live of {}s is out of range: {why}", ttl.as_secs())]
    BadTtl {
        /// The requested time to live.
        ttl: Duration,
        /// What is accepted.
        why: &'static str,
    },
    /// An attenuation with nothing to narrow.
    #[error("an attenuation must narrow something: give tools, capabilities or a time to live")]
    NothingToNarrow,
    /// An attenuation names a tool or capability the token does not allow:
    /// attenuation can only remove.
    #[error("the token does not allow {field} `{value}` (it allows: {}), and attenuation can only narrow", if allowed.is_empty() { "nothing".to_string() } else { allowed.join(", ") })]
    NotInToken {
        /// `tool` or `capability`.
        field: &'static str,
        /// What was asked for.
        value: String,
        /// What the token allows.
        allowed: Vec<String>,
    },
    /// An attenuation's time to live ends after the token expires.
    #[error("the token already expires at {}, before the requested {}: attenuation can only shorten a token's life", Rfc3339(*current), Rfc3339(*requested))]
    LaterExpiry {
        /// The end the time to live would give.
        requested: SystemTime,
        /// When the token expires now.
        current: SystemTime,
    },
    /// A key file that cannot be used.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
    /// A private key file that other users can read.
    #[error("private key {} can be read by other users (mode {mode:03o}): run `chmod 600` on it, and if it may have leaked, generate a new key and remove this one", path.display())]
    PrivateKeyReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key directory without a key to use.
    #[error("no {what} key in {}: generate one with `token keygen`", dir.display())]
    NoKeys {
        /// The directory.
        dir: PathBuf,
        /// `private` (to issue) or `public` (to verify).
        what: &'static str,
    },
    /// A revocation file that is missing, or has a line that is not a
    /// revocation id.
    #[error("revocation file {}{}: {reason}", path.display(), line.map_or(String::new(), |n| format!(", line {n}")))]
    RevocationFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number, when one line is at fault.
        line: Option<usize>,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: `read`, `create`, `write`, `list`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Biscuit refused to build or sign a block this crate made: a bug here,
    /// not a user error.
    #[error("could not build the token: {source}")]
    Build {
        /// Biscuit's error.
        #[source]
        source: biscuit_auth::error::Token,
    },
}

impl AuthError {
    /// The error's kind in Toka's one vocabulary: `unauthorized` for a
    /// token that cannot be used, `invalid-input` for a bad request or a bad
    /// key or revocation file, `not-found` for a missing file, `host` for
    /// the rest.
    pub fn kind(&self) -> ErrorKind {
        use AuthError as E;
        match self {
            E::Missing
            | E::Malformed { .. }
            | E::TooLarge { .. }
            | E::TooManyBlocks { .. }
            | E::BadSignature
            | E::UnknownKey { .. }
            | E::Expired { .. }
            | E::Revoked { .. }
            | E::WrongAudience { .. }
            | E::RunLimit { .. } => ErrorKind::Unauthorized,
            E::BadName { .. }
            | E::NoTools
            | E::BadTtl { .. }
            | E::NothingToNarrow
            | E::NotInToken { .. }
            | E::LaterExpiry { .. }
            | E::KeyFile { .. }
            | E::PrivateKeyReadable { .. }
            | E::NoKeys { .. }
            | E::RevocationFile { .. } => ErrorKind::InvalidInput,
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            E::Io { .. } | E::Build { .. } => ErrorKind::Host,
        }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        AuthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_faults_are_unauthorized_and_file_faults_are_not() {
        assert_eq!(AuthError::BadSignature.kind(), ErrorKind::Unauthorized);
        assert_eq!(
            AuthError::UnknownKey { id: 3 }.kind(),
            ErrorKind::Unauthorized
        );
        let e = AuthError::PrivateKeyReadable {
            path: "/k/1.private".into(),
            mode: 0o644,
        };
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("mode 644"), "{e}");
        let e = AuthError::io(
            "read",
            std::path::Path::new("/nope"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
