//! Key pairs on disk: `keygen` writes them, `issue` signs with the newest
//! private key, a verifier loads every public key into its ring.
//!
//! A key directory holds, for each key id N (a `u32`, assigned in order):
//!
//! ```text
//! N.private   mode 0600   ed25519-private/<64 hex digits>\n
//! N.public    mode 0644   ed25519/<64 hex digits>\n
//! ```
//!
//! Several keys are a rotation: the newest (highest id) signs, and every
//! public key verifies until its file is removed. A verifier needs only the
//! `*.public` files, so an operator can mount just those (a Kubernetes
//! Secret's files are symlinks into a hidden `..data` directory: names that
//! are not `N.public` or `N.private` are ignored, symlinks are followed).
//!
//! Threat model: a private key that other users can read is refused, as ssh
//! does, because its leak lets anyone mint tokens; a public key, or a key
//! directory without the sticky bit, that every user can write is refused
//! too, because replacing a key has the same effect.

use crate::error::AuthError;
use biscuit_auth::{KeyPair, PrivateKey, PublicKey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::Zeroizing;

/// Key files are about 80 bytes; anything much longer is not one.
const MAX_KEY_FILE: u64 = 4096;

/// What `keygen` created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key id tokens signed with this key carry.
    pub id: u32,
    /// The private key file (mode 0600).
    pub private_key: PathBuf,
    /// The public key file, the only one a verifier needs.
    pub public_key: PathBuf,
    /// The public key as written in its file (`ed25519/<hex>`); public.
    pub public: String,
}

/// Creates `dir` if needed (mode 0700) and writes a new Ed25519 key pair
/// with the next key id after the highest present, so that `issue` signs
/// with it from now on while tokens of older keys still verify.
///
/// # Errors
///
/// [`AuthError::Io`] when the directory cannot be created or listed or a
/// file cannot be written.
pub fn keygen(dir: &Path) -> Result<KeyInfo, AuthError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AuthError::io("create", dir, e))?;
    let highest = key_files(dir)?.keys().next_back().copied().unwrap_or(0);
    let pair = KeyPair::new();
    let private_text = Zeroizing::new(format!("{}\n", pair.private().to_prefixed_string()));
    let mut id = highest;
    // `create_new` reserves the id: a keygen running at the same time gets
    // AlreadyExists and moves on to the next id instead of overwriting.
    let (id, private_key) = loop {
        id = id.checked_add(1).ok_or(AuthError::KeyFile {
            path: dir.to_path_buf(),
            reason: "no key id left after 4294967295: move the old keys elsewhere",
        })?;
        let path = dir.join(format!("{id}.private"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(private_text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| AuthError::io("write", &path, e))?;
                break (id, path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(AuthError::io("create", &path, e)),
        }
    };
    let public = pair.public().to_string();
    let public_key = dir.join(format!("{id}.public"));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&public_key)
        .and_then(|mut f| f.write_all(format!("{public}\n").as_bytes()))
        .map_err(|e| AuthError::io("write", &public_key, e))?;
    Ok(KeyInfo {
        id,
        private_key,
        public_key,
        public,
    })
}

/// Which files of a key id are present.
#[derive(Default)]
struct KeyFiles {
    public: bool,
    private: bool,
}

/// The key ids in `dir`, from file names `N.public` and `N.private` (N in
/// its plain decimal form, so `01.public` is not a second key 1).
fn key_files(dir: &Path) -> Result<BTreeMap<u32, KeyFiles>, AuthError> {
    let mut ids: BTreeMap<u32, KeyFiles> = BTreeMap::new();
    let entries = fs::read_dir(dir).map_err(|e| AuthError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| AuthError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else {
            continue;
        };
        let Ok(id) = stem.parse::<u32>() else {
            continue;
        };
        if id.to_string() != stem {
            continue;
        }
        match ext {
            "public" => ids.entry(id).or_default().public = true,
            "private" => ids.entry(id).or_default().private = true,
            _ => {}
        }
    }
    Ok(ids)
}

/// Refuses a directory that every user can write and that lacks the sticky
/// bit: anyone could replace its key files with their own. (A Kubernetes
/// Secret volume is mounted read-only, with the sticky bit.)
fn check_dir(dir: &Path) -> Result<(), AuthError> {
    let meta = fs::metadata(dir).map_err(|e| AuthError::io("read", dir, e))?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(AuthError::KeyFile {
            path: dir.to_path_buf(),
            reason: "every user can write this directory, so anyone could put their own key in it: run `chmod o-w` on it",
        });
    }
    Ok(())
}

/// Reads a small key file, refusing anything too long to be one.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, AuthError> {
    let mut text = Zeroizing::new(String::new());
    fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE + 1).read_to_string(&mut text))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => AuthError::KeyFile {
                path: path.to_path_buf(),
                reason: "not text: it is not a key file written by keygen",
            },
            _ => AuthError::io("read", path, e),
        })?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(AuthError::KeyFile {
            path: path.to_path_buf(),
            reason: "too long to be a key file written by keygen",
        });
    }
    Ok(text)
}

/// Reads a public key, refusing one that every user may replace.
fn read_public(path: &Path) -> Result<PublicKey, AuthError> {
    let meta = fs::metadata(path).map_err(|e| AuthError::io("read", path, e))?;
    if meta.mode() & 0o002 != 0 {
        return Err(AuthError::KeyFile {
            path: path.to_path_buf(),
            reason: "every user can write it, so anyone could put their own key there: run `chmod o-w` on it",
        });
    }
    let text = read_key_file(path)?;
    PublicKey::from_str(text.trim()).map_err(|_| AuthError::KeyFile {
        path: path.to_path_buf(),
        reason: "not a public key: keygen writes `ed25519/` and 64 hex digits",
    })
}

/// Reads a private key, refusing one that anyone but its owner can read.
fn read_private(path: &Path) -> Result<PrivateKey, AuthError> {
    let meta = fs::metadata(path).map_err(|e| AuthError::io("read", path, e))?;
    if meta.mode() & 0o077 != 0 {
        return Err(AuthError::PrivateKeyReadable {
            path: path.to_path_buf(),
            mode: meta.mode() & 0o777,
        });
    }
    let text = read_key_file(path)?;
    PrivateKey::from_str(text.trim()).map_err(|_| AuthError::KeyFile {
        path: path.to_path_buf(),
        reason: "not a private key: keygen writes `ed25519-private/` and 64 hex digits",
    })
}

/// The newest key pair in `dir` (the highest id with a private key), with
/// its id, for signing. Its public key must be beside it and match, since a
/// token signed with a key no verifier has is useless.
pub(crate) fn signer(dir: &Path) -> Result<(u32, KeyPair), AuthError> {
    check_dir(dir)?;
    let (id, files) = key_files(dir)?
        .into_iter()
        .rev()
        .find(|(_, f)| f.private)
        .ok_or_else(|| AuthError::NoKeys {
            dir: dir.to_path_buf(),
            what: "private",
        })?;
    let public_path = dir.join(format!("{id}.public"));
    if !files.public {
        return Err(AuthError::KeyFile {
            path: public_path,
            reason: "missing: verifiers need the newest key's public half; restore it, or remove the private key to sign with an older one",
        });
    }
    let private = read_private(&dir.join(format!("{id}.private")))?;
    let pair = KeyPair::from(&private);
    if pair.public() != read_public(&public_path)? {
        return Err(AuthError::KeyFile {
            path: public_path,
            reason: "does not match its private key: restore the file keygen wrote",
        });
    }
    Ok((id, pair))
}

/// The public keys a verifier accepts, by key id.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyRing {
    keys: BTreeMap<u32, PublicKey>,
}

impl KeyRing {
    /// Every `N.public` in `dir`. Private keys are neither needed nor read.
    pub(crate) fn load(dir: &Path) -> Result<KeyRing, AuthError> {
        check_dir(dir)?;
        let mut keys = BTreeMap::new();
        for (id, files) in key_files(dir)? {
            if files.public {
                keys.insert(id, read_public(&dir.join(format!("{id}.public")))?);
            }
        }
        Ok(KeyRing { keys })
    }

    /// The key with id `id`.
    pub(crate) fn get(&self, id: u32) -> Option<PublicKey> {
        self.keys.get(&id).copied()
    }

    /// True when no key is loaded.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The loaded key ids.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }
}

/// What identifies one version of a file without reading it: a change of
/// content, a replacement (rename, symlink swap) or a removal changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of `path`, following symlinks.
    pub(crate) fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The stamps of a key directory's public keys: equal stamps mean the ring
/// need not be reloaded.
pub(crate) fn ring_stamp(dir: &Path) -> Result<Vec<(u32, FileStamp)>, AuthError> {
    let mut stamps = Vec::new();
    for (id, files) in key_files(dir)? {
        if files.public {
            let path = dir.join(format!("{id}.public"));
            let stamp = FileStamp::of(&path).map_err(|e| AuthError::io("read", &path, e))?;
            stamps.push((id, stamp));
        }
    }
    Ok(stamps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn keygen_writes_a_private_key_only_its_owner_can_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let info = keygen(&dir).unwrap();
        assert_eq!(info.id, 1);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&info.private_key), 0o600);
        let text = fs::read_to_string(&info.public_key).unwrap();
        assert_eq!(text, format!("{}\n", info.public));
        assert!(info.public.starts_with("ed25519/"), "{}", info.public);
        let (id, pair) = signer(&dir).unwrap();
        assert_eq!((id, pair.public().to_string()), (1, info.public));
    }

    #[test]
    fn key_ids_follow_the_highest_present() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(keygen(tmp.path()).unwrap().id, 1);
        assert_eq!(keygen(tmp.path()).unwrap().id, 2);
        // Retiring key 1 does not reuse its id; a stray file is ignored.
        fs::remove_file(tmp.path().join("1.public")).unwrap();
        fs::remove_file(tmp.path().join("1.private")).unwrap();
        fs::write(tmp.path().join("README"), "keys").unwrap();
        assert_eq!(keygen(tmp.path()).unwrap().id, 3);
        let ring = KeyRing::load(tmp.path()).unwrap();
        assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(signer(tmp.path()).unwrap().0, 3);
    }

    #[test]
    fn a_private_key_others_can_read_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let info = keygen(tmp.path()).unwrap();
        for loose in [0o644, 0o640, 0o604] {
            fs::set_permissions(&info.private_key, fs::Permissions::from_mode(loose)).unwrap();
            let e = signer(tmp.path()).map(|_| ()).unwrap_err();
            assert!(
                matches!(&e, AuthError::PrivateKeyReadable { mode, .. } if *mode == loose),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"), "{e}");
            // The message names the file, never its content.
            assert!(!e.to_string().contains("ed25519-private"), "{e}");
        }
    }

    #[test]
    fn a_world_writable_public_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let info = keygen(tmp.path()).unwrap();
        fs::set_permissions(&info.public_key, fs::Permissions::from_mode(0o666)).unwrap();
        let e = KeyRing::load(tmp.path()).unwrap_err();
        assert!(matches!(e, AuthError::KeyFile { .. }), "{e}");
        assert!(e.to_string().contains("chmod o-w"), "{e}");
    }

    #[test]
    fn a_directory_anyone_can_write_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        keygen(tmp.path()).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = KeyRing::load(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("this directory"), "{e}");
        assert!(signer(tmp.path()).is_err());
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(KeyRing::load(tmp.path()).is_ok());
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn signing_needs_the_matching_public_key() {
        let tmp = tempfile::tempdir().unwrap();
        keygen(tmp.path()).unwrap();
        let other = tempfile::tempdir().unwrap();
        keygen(other.path()).unwrap();
        fs::copy(other.path().join("1.public"), tmp.path().join("1.public")).unwrap();
        let e = signer(tmp.path()).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        fs::remove_file(tmp.path().join("1.public")).unwrap();
        let e = signer(tmp.path()).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let e = signer(empty.path()).map(|_| ()).unwrap_err();
        assert!(matches!(e, AuthError::NoKeys { .. }), "{e}");
    }

    #[test]
    fn a_garbled_key_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("4.public"), "ed25519/zz\n").unwrap();
        let e = KeyRing::load(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("4.public"), "{e}");
    }
}
