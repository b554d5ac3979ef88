//! The on-disk compile cache: compiled components and modules keyed by the
//! wasm's SHA-256 and the engine's compatibility hash, loaded by mapping the
//! file rather than reading it; and the index that spares a warm start from
//! hashing the wasm.
//!
//! # Threat model
//!
//! Deserializing compiled code is `unsafe`: the bytes become machine code.
//! The guarantee is that only bytes this host produced are ever loaded.
//!
//! - **Other users** cannot write the cache: its directories must belong to
//!   the current user and be writable by nobody else, or the host runs
//!   without a cache and says so. The secret key (mode 0600) cannot be read
//!   by them either, so they cannot forge a record.
//! - **Accidents** (a truncated or half-copied entry, an entry copied from
//!   another machine or another cache, a backup restored over a newer one,
//!   an older host's format) fail the check and are recompiled and
//!   rewritten, never loaded. Entries are written to a temporary file and
//!   renamed into place, so readers never see a half-written file, and this
//!   host never writes to a file that might be mapped.
//! - **Processes running as the user** can do anything the user can: read
//!   the key and forge records, write into a mapped entry, or more simply
//!   replace `toka-host` itself or `~/.bashrc`. The cache does not try to
//!   defend against them (nothing in a user's own account could); what it
//!   guarantees is that it adds no way in beyond the ones they already
//!   have: to get foreign code loaded they need the user's write access.
//!
//! # What is checked on load
//!
//! Each entry is two files: the artifact (`<kind>-<digest>.cwasm`, exactly
//! what wasmtime serialized, so wasmtime can map it) and a small record
//! (`.auth`, see [`super::record`]) tagged with keyed BLAKE3 under the
//! cache's key: the artifact's BLAKE3 digest, and the device, inode, size,
//! mtime and ctime the artifact had when the digest was taken. The tag also
//! covers the entry's name, so a record cannot vouch for another entry.
//!
//! A load reads the record (144 bytes) and `fstat`s the artifact. If the
//! tag holds and the stamp is unchanged, the artifact has not been written
//! since it was hashed (every write moves its ctime, which no one but the
//! kernel can set; a rename over it changes the inode) and it is mapped
//! without being read. Otherwise (changed stamp, a record taken too soon
//! after the last change to be sure, or a record older than a day) the whole
//! artifact is read and its digest compared with the recorded one: equal,
//! and the record is renewed; different, and the entry is rejected and
//! recompiled. What is mapped is the very inode that was checked (it is
//! opened once and mapped through its descriptor).
//!
//! The same kind of record maps a wasm file (by device and inode) to its
//! SHA-256, so that a warm start needs neither the wasm's bytes nor their
//! hash: while the record vouches for the file, the file still hashes to the
//! recorded digest, which is what a manifest's pin is checked against.

use super::record::{RECORD_LEN, Record, Stamp, Unusable};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    fn prefix(self) -> &'static str {
        match self {
            EntryKind::Component => "component",
            EntryKind::Module => "module",
        }
    }
}

/// An authenticated entry, open: map it through [`Entry::file`], whose
/// inode is the one that was checked.
pub struct Entry {
    file: File,
    path: PathBuf,
}

impl Entry {
    /// The open artifact.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The artifact, to hand to wasmtime.
    pub fn into_file(self) -> File {
        self.file
    }

    /// Where the artifact is.
    pub fn path(&self) -> &Path {
        &self.path
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

    fn name(kind: EntryKind, digest: &str) -> String {
        format!("{}-{digest}", kind.prefix())
    }

    fn path(&self, kind: EntryKind, digest: &str) -> PathBuf {
        self.dir.join(format!("{}.cwasm", Self::name(kind, digest)))
    }

    /// The authenticated entry for `digest`, if there is one that this host
    /// wrote and nobody changed since (see the module's header for what is
    /// checked).
    pub fn get(&self, kind: EntryKind, digest: &str) -> Result<Entry, Miss> {
        let path = self.path(kind, digest);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Rejected(format!("unreadable: {e}"))),
        };
        let checked_at = SystemTime::now();
        let stamp = file
            .metadata()
            .map(|m| Stamp::of(&m))
            .map_err(|e| Miss::Rejected(format!("cannot inspect it: {e}")))?;
        let name = Self::name(kind, digest);
        let record = match self.read_record(&name) {
            Ok(r) => r,
            Err(None) => {
                return Err(Miss::Rejected(
                    "its authentication record is missing".into(),
                ));
            }
            Err(Some(Unusable::Format)) => {
                return Err(Miss::Rejected(
                    "written in another version of the cache format".into(),
                ));
            }
            Err(Some(Unusable::Tag)) => {
                return Err(Miss::Rejected("authentication tag does not match".into()));
            }
        };
        if record.vouches_for(&stamp, checked_at) {
            return Ok(Entry { file, path });
        }
        // Changed since it was recorded, or recorded too soon after a change
        // to be sure, or long ago: check the content itself.
        let mut bytes = Vec::with_capacity(usize::try_from(stamp.size()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .and_then(|_| file.seek(std::io::SeekFrom::Start(0)))
            .map_err(|e| Miss::Rejected(format!("unreadable: {e}")))?;
        if blake3::hash(&bytes).to_hex().as_bytes() != record.content {
            return Err(Miss::Rejected(
                "changed on disk since this host wrote it".into(),
            ));
        }
        // The same bytes this host wrote: vouch for them as they are now.
        if let Some(renewed) = Record::new(stamp, checked_at, record.content()) {
            let _ = self.write_record(&name, &renewed);
        }
        Ok(Entry { file, path })
    }

    /// Stores `payload` for `digest`, atomically.
    ///
    /// # Errors
    ///
    /// I/O errors; callers treat a failed store as a warning.
    pub fn put(&self, kind: EntryKind, digest: &str, payload: &[u8]) -> std::io::Result<()> {
        let content = blake3::hash(payload).to_hex();
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        let taken = SystemTime::now();
        let file = tmp.persist(self.path(kind, digest)).map_err(|e| e.error)?;
        let stamp = Stamp::of(&file.metadata()?);
        let record = Record::new(stamp, taken, &content)
            .ok_or_else(|| std::io::Error::other("a BLAKE3 digest is 64 hex digits"))?;
        self.write_record(&Self::name(kind, digest), &record)?;
        // Entries of cache format 2 (tag and artifact in one `.bin` file)
        // are never read again.
        let _ = std::fs::remove_file(self.dir.join(format!("{}.bin", Self::name(kind, digest))));
        Ok(())
    }

    /// The SHA-256 (hex) recorded for the wasm file `meta` describes, if the
    /// record still vouches for the file as it is.
    pub fn known_digest(&self, meta: &std::fs::Metadata) -> Option<String> {
        let stamp = Stamp::of(meta);
        let record = self.read_record(&wasm_name(&stamp)).ok()?;
        record
            .vouches_for(&stamp, SystemTime::now())
            .then(|| record.content().to_string())
    }

    /// Records that the wasm file whose metadata was `before` when reading
    /// began at `taken` hashed to `digest`, if it is still stamped the same
    /// (`after`), so the bytes hashed are the bytes the stamp describes.
    pub fn remember_digest(
        &self,
        before: &std::fs::Metadata,
        after: &std::fs::Metadata,
        taken: SystemTime,
        digest: &str,
    ) {
        let stamp = Stamp::of(before);
        if stamp != Stamp::of(after) {
            return;
        }
        if let Some(record) = Record::new(stamp, taken, digest) {
            // A failed write only costs the next start a hash.
            let _ = self.write_record(&wasm_name(&stamp), &record);
        }
    }

    /// The record `name.auth`: `Err(None)` when there is none.
    fn read_record(&self, name: &str) -> Result<Record, Option<Unusable>> {
        let path = self.dir.join(format!("{name}.auth"));
        let mut bytes = Vec::with_capacity(RECORD_LEN + 1);
        File::open(&path)
            .and_then(|f| f.take(RECORD_LEN as u64 + 1).read_to_end(&mut bytes))
            .map_err(|_| None)?;
        Record::decode(&bytes, &self.key, name).map_err(Some)
    }

    fn write_record(&self, name: &str, record: &Record) -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&record.encode(&self.key, name))?;
        tmp.persist(self.dir.join(format!("{name}.auth")))
            .map_err(|e| e.error)?;
        Ok(())
    }
}

/// The record of a wasm file is named for its inode, so hard links and
/// other paths to the same file share it.
fn wasm_name(stamp: &Stamp) -> String {
    format!("wasm-{}", stamp.inode_name())
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

    fn get(c: &CompileCache, kind: EntryKind, digest: &str) -> Result<Vec<u8>, Miss> {
        c.get(kind, digest).map(|e| {
            let mut b = Vec::new();
            e.into_file().read_to_end(&mut b).expect("read");
            b
        })
    }

    fn rejected(r: Result<Vec<u8>, Miss>) -> String {
        match r {
            Err(Miss::Rejected(why)) => why,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let (_d, c) = cache();
        assert_eq!(get(&c, EntryKind::Component, "ab"), Err(Miss::Absent));
        c.put(EntryKind::Component, "ab", b"compiled").expect("put");
        assert_eq!(
            get(&c, EntryKind::Component, "ab"),
            Ok(b"compiled".to_vec())
        );
        // Checked in full once (just written: racy), then vouched for.
        assert_eq!(
            get(&c, EntryKind::Component, "ab"),
            Ok(b"compiled".to_vec())
        );
        assert_eq!(get(&c, EntryKind::Module, "ab"), Err(Miss::Absent));
    }

    #[test]
    fn tampered_and_foreign_entries_are_rejected() {
        let (_d, c) = cache();
        c.put(EntryKind::Component, "ab", b"compiled").expect("put");
        let path = c.path(EntryKind::Component, "ab");
        let auth = c.dir.join("component-ab.auth");
        std::fs::write(&path, b"compilex").expect("write");
        assert!(rejected(get(&c, EntryKind::Component, "ab")).contains("changed on disk"));
        std::fs::write(&path, b"garbage").expect("write");
        assert!(rejected(get(&c, EntryKind::Component, "ab")).contains("changed on disk"));

        // A record of another format version.
        c.put(EntryKind::Component, "ab", b"compiled").expect("put");
        let mut old = std::fs::read(&auth).expect("read");
        old[6] = 0;
        std::fs::write(&auth, &old).expect("write");
        assert!(
            rejected(get(&c, EntryKind::Component, "ab"))
                .contains("another version of the cache format")
        );

        // A record moved from another entry.
        c.put(EntryKind::Component, "cd", b"compiled").expect("put");
        std::fs::copy(c.dir.join("component-cd.auth"), &auth).expect("copy");
        assert!(rejected(get(&c, EntryKind::Component, "ab")).contains("tag does not match"));

        // An entry written under another key (another cache) is foreign.
        let (_d2, other) = cache();
        other
            .put(EntryKind::Component, "ab", b"compiled")
            .expect("put");
        std::fs::copy(other.dir.join("component-ab.auth"), &auth).expect("copy");
        assert!(rejected(get(&c, EntryKind::Component, "ab")).contains("tag does not match"));

        // An artifact without a record.
        std::fs::remove_file(&auth).expect("rm");
        assert!(rejected(get(&c, EntryKind::Component, "ab")).contains("missing"));
    }

    #[test]
    fn digest_records_need_an_unchanged_file() {
        let (d, c) = cache();
        let wasm = d.path().join("x.wasm");
        std::fs::write(&wasm, b"\0asm").expect("write");
        let meta = std::fs::metadata(&wasm).expect("stat");
        let hex = "ab".repeat(32);
        // Taken right after the file changed: racy, so not trusted yet.
        c.remember_digest(&meta, &meta, SystemTime::now(), &hex);
        assert_eq!(c.known_digest(&meta), None);
        let later = SystemTime::now() + super::super::record::RACY;
        c.remember_digest(&meta, &meta, later, &hex);
        assert_eq!(c.known_digest(&meta).as_deref(), Some(hex.as_str()));
        // Any change of the file moves its ctime.
        std::fs::write(&wasm, b"\0asn").expect("write");
        let changed = std::fs::metadata(&wasm).expect("stat");
        assert_eq!(c.known_digest(&changed), None);
        // A file that changed while it was read is not recorded.
        c.remember_digest(&meta, &changed, later, &hex);
        assert_eq!(c.known_digest(&changed), None);
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
        assert_eq!(get(&b, EntryKind::Module, "x"), Ok(b"1".to_vec()));
    }
}
