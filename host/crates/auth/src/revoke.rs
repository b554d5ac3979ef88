//! The revocation file: `revoke` appends to it, a verifier refuses every
//! token that carries one of its ids.
//!
//! Format: one revocation id per line, in hex (biscuit's id of a block is
//! its signature, 64 bytes for Ed25519); blank lines and lines starting
//! with `#` are ignored. `revoke` writes a `#` line before each id saying
//! which token it was and when it expires (after which the line can go).
//! A verifier refuses a file that every user can write: whoever can write
//! it can take a token off the list.
//!
//! Which id: a token's ids are its parent's ids plus one for its own last
//! block, so listing the *last* id revokes the token and everything
//! attenuated from it, but neither its parent nor its siblings.

use crate::error::AuthError;
use crate::inspect::{summarize, token_id};
use crate::keys::FileStamp;
use crate::time::Rfc3339;
use crate::token::parse_unverified;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

/// Adds the id that revokes `token` (and every token attenuated from it)
/// to `file`, creating it if needed; does nothing when the id is already
/// there. Needs no key. Returns the ids that revoke the token, in hex.
///
/// # Errors
///
/// A token error when `token` is not a token; [`AuthError::RevocationFile`]
/// when the file has a line that is not an id (fix it first: a verifier
/// would refuse it too); [`AuthError::Io`] when it cannot be read or
/// written.
pub fn revoke(token: &str, file: &Path) -> Result<Vec<String>, AuthError> {
    let unverified = parse_unverified(token)?;
    let ids = unverified.revocation_identifiers();
    let Some(last) = ids.last() else {
        return Err(AuthError::Malformed {
            reason: "it has no revocation id",
        });
    };
    let existing = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(AuthError::io("read", file, e)),
    };
    let revoked = parse(file, &existing)?;
    let id = hex::encode(last);
    if revoked.contains(last.as_slice()) {
        return Ok(vec![id]);
    }
    let mut entry = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        entry.push('\n');
    }
    // The subject is unverified text: `{:?}` keeps it on one line.
    let about = summarize(&unverified).map_or_else(
        |_| String::new(),
        |s| format!(" for {:?}, expires {}", s.info.subject, Rfc3339(s.expires)),
    );
    entry.push_str(&format!(
        "# token {}{about}; revoked {}\n{id}\n",
        token_id(&ids),
        Rfc3339(SystemTime::now())
    ));
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(file)
        .and_then(|mut f| f.write_all(entry.as_bytes()))
        .map_err(|e| AuthError::io("write", file, e))?;
    Ok(vec![id])
}

/// The revoked ids, as bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Revocations {
    ids: HashSet<Box<[u8]>>,
}

impl Revocations {
    /// Reads `path`, which must exist: a verifier told to honour a
    /// revocation file that is not there fails closed.
    pub(crate) fn load(path: &Path) -> Result<Revocations, AuthError> {
        // Whoever can write the list can take a token off it.
        if let Ok(meta) = fs::metadata(path)
            && meta.mode() & 0o002 != 0
        {
            return Err(AuthError::RevocationFile {
                path: path.to_path_buf(),
                line: None,
                reason: "every user can write it, so anyone could un-revoke a token: run `chmod o-w` on it",
            });
        }
        let text = fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AuthError::RevocationFile {
                path: path.to_path_buf(),
                line: None,
                reason: "does not exist: create it empty (`touch`), or start without revocations",
            },
            std::io::ErrorKind::InvalidData => AuthError::RevocationFile {
                path: path.to_path_buf(),
                line: None,
                reason: "is not text",
            },
            _ => AuthError::io("read", path, e),
        })?;
        Ok(Revocations {
            ids: parse(path, &text)?,
        })
    }

    /// True when any of `ids` is revoked.
    pub(crate) fn any(&self, ids: &[Vec<u8>]) -> bool {
        !self.ids.is_empty() && ids.iter().any(|id| self.ids.contains(id.as_slice()))
    }

    /// How many ids are revoked.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The stamp of a revocation file (which must exist).
pub(crate) fn stamp(path: &Path) -> Result<FileStamp, AuthError> {
    FileStamp::of(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AuthError::RevocationFile {
            path: path.to_path_buf(),
            line: None,
            reason: "has disappeared: the previous revocations stay in force until it is back",
        },
        _ => AuthError::io("read", path, e),
    })
}

fn parse(path: &Path, text: &str) -> Result<HashSet<Box<[u8]>>, AuthError> {
    let mut ids = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| AuthError::RevocationFile {
            path: path.to_path_buf(),
            line: Some(n + 1),
            reason,
        };
        let id = hex::decode(line).map_err(|_| {
            bad("not a revocation id: write one id in hex per line (`token revoke` does)")
        })?;
        if id.len() < 32 {
            return Err(bad(
                "too short to be a revocation id (they are 64 bytes, 128 hex digits)",
            ));
        }
        ids.insert(id.into_boxed_slice());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_ignored_and_bad_lines_named() {
        let id = "ab".repeat(64);
        let text = format!("# revoked\n\n{id}\n  {}  \n", id.to_uppercase());
        let ids = parse(Path::new("r"), &text).unwrap();
        assert_eq!(ids.len(), 1);
        let e = parse(Path::new("r"), &format!("{id}\nnope\n")).unwrap_err();
        assert!(e.to_string().contains("r, line 2"), "{e}");
        let e = parse(Path::new("r"), "abcd\n").unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn a_missing_revocation_file_is_an_error_not_an_empty_list() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Revocations::load(&tmp.path().join("revoked")).unwrap_err();
        assert!(e.to_string().contains("touch"), "{e}");
    }

    #[test]
    fn a_revocation_file_anyone_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("revoked");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let e = Revocations::load(&path).unwrap_err();
        assert!(e.to_string().contains("un-revoke"), "{e}");
    }
}
