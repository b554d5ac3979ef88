//! The on-disk compile cache: compiled components and modules keyed by the
//! wasm's SHA-256 and the engine's compatibility hash.
//!
//! Deserializing compiled code is `unsafe`: the bytes become machine code.
//! So an entry is trusted only if this host wrote it: each entry carries a
//! keyed-BLAKE3 tag (a MAC) under a per-cache secret key (mode 0600, created
//! on first use), and the cache directory must belong to the current user and be
//! writable by nobody else. A corrupt, truncated, foreign or stale entry
//! fails the check and is recompiled and rewritten, never loaded. Entries are
//! written to a temporary file and renamed into place, so readers never see a
//! half-written file.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Version 2: keyed BLAKE3 tags (version 1 used HMAC-SHA256; its entries
/// fail the check and are recompiled).
const MAGIC: &[u8; 8] = b"TOKAC\x00\x02\n";
const TAG_LEN: usize = 32;
const KEY_LEN: usize = 32;

/// A cache directory that passed its ownership checks, with its key.
#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

/// Why an entry was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No entry yet.
    Absent,
    /// An entry exists but is not one this host wrote intact.
    Rejected(String),
}

/// What a cache entry is for.
#[derive(Clone, Copy, Debug)]
pub enum EntryKind {
    /// A compiled component.
    Component,
    /// A compiled core module.
    Module,
}

impl EntryKind {
    fn tag(self) -> u8 {
        match self {
            EntryKind::Component => b'c',
            EntryKind::Module => b'm',
        }
    }
}

impl CompileCache {
    /// Opens (creating if needed) the cache at `root`, in a subdirectory for
    /// this engine's compatibility hash `engine_id`.
    ///
    /// # Errors
    ///
    /// A message saying why the directory cannot be used safely; callers run
    /// without a cache and say so.
    pub fn open(root: &Path, engine_id: &str) -> Result<CompileCache, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| format!("cannot create cache directory {}: {e}", root.display()))?;
        check_private(root, false)?;
        let key = load_or_create_key(root)?;
        let dir = root.join(engine_id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
        check_private(&dir, false)?;
        Ok(CompileCache { dir, key })
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, kind: EntryKind, digest: &str) -> PathBuf {
        let prefix = match kind {
            EntryKind::Component => "component",
            EntryKind::Module => "module",
        };
        self.dir.join(format!("{prefix}-{digest}.bin"))
    }

    fn tag(&self, kind: EntryKind, digest: &str, payload: &[u8]) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        mac.update(MAGIC);
        mac.update(&[kind.tag()]);
        mac.update(digest.as_bytes());
        mac.update(&(payload.len() as u64).to_le_bytes());
        mac.update(payload);
        mac.finalize()
    }

    /// The authenticated payload of the entry for `digest`, if there is one
    /// that this host wrote and nobody changed since.
    pub fn get(&self, kind: EntryKind, digest: &str) -> Result<Payload, Miss> {
        let path = self.path(kind, digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Rejected(format!("unreadable: {e}"))),
        };
        if bytes.len() < MAGIC.len() + TAG_LEN || bytes[..6] != MAGIC[..6] {
            return Err(Miss::Rejected("not a Toka cache entry".into()));
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(Miss::Rejected(
                "written in another version of the cache format".into(),
            ));
        }
        let start = MAGIC.len() + TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&bytes[MAGIC.len()..start]);
        // `Hash` compares in constant time.
        if self.tag(kind, digest, &bytes[start..]) != blake3::Hash::from_bytes(tag) {
            return Err(Miss::Rejected("authentication tag does not match".into()));
        }
        Ok(Payload { bytes, start })
    }

    /// Stores `payload` for `digest`, atomically.
    ///
    /// # Errors
    ///
    /// I/O errors; callers treat a failed store as a warning.
    pub fn put(&self, kind: EntryKind, digest: &str, payload: &[u8]) -> std::io::Result<()> {
        let tag = *self.tag(kind, digest, payload).as_bytes();
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&tag)?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(kind, digest)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// An authenticated entry's payload, read once and not copied again.
pub struct Payload {
    bytes: Vec<u8>,
    start: usize,
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Refuses a path that another user owns or could write.
fn check_private(path: &Path, secret: bool) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symlink; point --cache-dir at the real directory",
            path.display()
        ));
    }
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to this user ({me}); compiled code from it could not be trusted",
            path.display(),
            meta.uid()
        ));
    }
    let forbidden = if secret { 0o077 } else { 0o022 };
    if meta.mode() & forbidden != 0 {
        return Err(format!(
            "{} has mode {:o}, which lets other users {}; run `chmod go-rwx {}`",
            path.display(),
            meta.mode() & 0o777,
            if secret { "read it" } else { "write to it" },
            path.display()
        ));
    }
    Ok(())
}

fn load_or_create_key(root: &Path) -> Result<[u8; KEY_LEN], String> {
    let path = root.join("key");
    if !path.exists() {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for the cache key: {e}"))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".key-")
            .tempfile_in(root)
            .map_err(|e| format!("cannot write the cache key in {}: {e}", root.display()))?;
        tmp.write_all(&key)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("cannot write the cache key: {e}"))?;
        // A hard link publishes the complete key, and fails if another
        // process published one first; then theirs is the key.
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => return Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    check_private(&path, true)?;
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    bytes.try_into().map_err(|_| {
        format!(
            "{} is not a cache key; delete it to make a new one",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, CompileCache) {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("cache");
        let c = CompileCache::open(&root, "engine").expect("open");
        (d, c)
    }

    #[test]
    fn round_trip() {
        let (_d, c) = cache();
        let get = |kind, digest| c.get(kind, digest).map(|p| p.to_vec());
        assert_eq!(get(EntryKind::Component, "ab"), Err(Miss::Absent));
        c.put(EntryKind::Component, "ab", b"compiled").expect("put");
        assert_eq!(get(EntryKind::Component, "ab"), Ok(b"compiled".to_vec()));
        assert_eq!(get(EntryKind::Module, "ab"), Err(Miss::Absent));
    }

    #[test]
    fn tampered_and_foreign_entries_are_rejected() {
        let (_d, c) = cache();
        c.put(EntryKind::Component, "ab", b"compiled").expect("put");
        let path = c.path(EntryKind::Component, "ab");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            c.get(EntryKind::Component, "ab"),
            Err(Miss::Rejected(_))
        ));
        std::fs::write(&path, b"garbage").expect("write");
        assert!(matches!(
            c.get(EntryKind::Component, "ab"),
            Err(Miss::Rejected(_))
        ));
        // An entry of the previous format (HMAC-SHA256) is recompiled.
        let mut old = std::fs::read(&path).expect("read");
        old.clear();
        old.extend_from_slice(b"TOKAC\x00\x01\n");
        old.extend_from_slice(&[0u8; TAG_LEN]);
        old.extend_from_slice(b"compiled");
        std::fs::write(&path, &old).expect("write");
        assert!(matches!(
            c.get(EntryKind::Component, "ab"),
            Err(Miss::Rejected(why)) if why.contains("another version of the cache format")
        ));
        // An entry written under another key (another cache) is foreign.
        let (_d2, other) = cache();
        other
            .put(EntryKind::Component, "ab", b"compiled")
            .expect("put");
        std::fs::copy(other.path(EntryKind::Component, "ab"), &path).expect("copy");
        assert!(matches!(
            c.get(EntryKind::Component, "ab"),
            Err(Miss::Rejected(_))
        ));
    }

    #[test]
    fn world_writable_cache_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("cache");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = CompileCache::open(&root, "engine").err().expect("refused");
        assert!(err.contains("chmod go-rwx"), "{err}");
    }

    #[test]
    fn key_is_reused() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path().join("cache");
        let a = CompileCache::open(&root, "engine").expect("open");
        a.put(EntryKind::Module, "x", b"1").expect("put");
        let b = CompileCache::open(&root, "engine").expect("open");
        assert_eq!(b.get(EntryKind::Module, "x").as_deref(), Ok(&b"1"[..]));
    }
}
