//! The local content store: pulled blobs by digest, and an index from a
//! pinned manifest digest to its layers, so a second pull (or `run`) of the
//! same digest needs no network.
//!
//! ```text
//! ROOT/                            0700, owned by this user, writable by nobody else
//!   blobs/sha256/<hex>             the bytes whose SHA-256 is <hex>: layers, manifests, signature payloads
//!   index/sha256/<hex>.json        manifest <hex> -> its wasm and manifest YAML layers (+ signatures seen)
//!   tmp/                           downloads in flight
//! ```
//!
//! Threat model. A blob enters `blobs/` only by a rename from `tmp/` after
//! its digest was checked, and an index entry is written (atomically, last)
//! only after every blob it names is in place. So a registry that stops
//! mid-pull, serves tampered bytes or lies about sizes leaves no partial and
//! no wrong entry. Entries are then trusted without re-hashing: the store
//! must belong to the current user and be writable by nobody else (checked
//! on every open), so anyone able to change an entry could equally change the
//! user's own files. Sizes are re-checked on every lookup, which catches a
//! truncated file. (Compare the compile cache, which authenticates entries
//! with a MAC because it loads machine code.)

use crate::artifact::Descriptor;
use crate::error::OciError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use toka_spec::manifest::Sha256Hex;

/// Version of the index entry format; other versions are misses.
const INDEX_VERSION: u32 = 1;
/// Downloads left behind by a killed process are removed after this long.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

/// A local, content-addressed store of pulled artifacts.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// What the index records about one pulled manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) version: u32,
    /// The pinned reference it was pulled as.
    pub(crate) reference: String,
    pub(crate) wasm: BlobRef,
    pub(crate) manifest_yaml: BlobRef,
    /// Signatures seen for this digest (payload blobs are in `blobs/`), so
    /// a later pull can verify offline.
    #[serde(default)]
    pub(crate) signatures: Vec<StoredSignature>,
}

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlobRef {
    pub(crate) digest: Sha256Hex,
    pub(crate) size: u64,
}

/// One cosign signature: the payload blob and its base64 DER signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSignature {
    pub(crate) payload: Sha256Hex,
    pub(crate) signature: String,
}

/// A download into the store, not yet verified; dropping it removes it.
pub(crate) struct Pending {
    file: tempfile::NamedTempFile,
}

impl Pending {
    /// The temporary file.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Appends bytes.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), OciError> {
        self.file
            .write_all(bytes)
            .map_err(|e| OciError::store(self.file.path(), e))
    }
}

impl IndexEntry {
    pub(crate) fn new(
        reference: String,
        wasm: BlobRef,
        manifest_yaml: BlobRef,
        signatures: Vec<StoredSignature>,
    ) -> IndexEntry {
        IndexEntry {
            version: INDEX_VERSION,
            reference,
            wasm,
            manifest_yaml,
            signatures,
        }
    }
}

impl ContentStore {
    /// The default store: `$XDG_CACHE_HOME/toka/oci`, else
    /// `$HOME/.cache/toka/oci`, with variables looked up by `get`.
    pub fn default_root(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        // XDG says relative values are to be ignored.
        if let Some(x) = get("XDG_CACHE_HOME").filter(|x| Path::new(x).is_absolute()) {
            return Some(Path::new(&x).join("toka/oci"));
        }
        get("HOME")
            .filter(|h| Path::new(h).is_absolute())
            .map(|h| Path::new(&h).join(".cache/toka/oci"))
    }

    /// Opens the store at `root`, creating it (mode 0700) if needed.
    ///
    /// # Errors
    ///
    /// [`OciError::Store`] if it cannot be created, or if it or one of its
    /// directories is a symlink, belongs to another user, or is writable by
    /// others (the message says which `chmod` fixes it).
    pub fn open(root: &Path) -> Result<ContentStore, OciError> {
        let store = ContentStore {
            root: root.to_path_buf(),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| OciError::store(root, e))?;
        check_private(root)?;
        for dir in [store.blob_dir(), store.index_dir(), store.tmp_dir()] {
            for d in [dir.parent(), Some(dir.as_path())].into_iter().flatten() {
                if d == root {
                    continue;
                }
                match std::fs::DirBuilder::new().mode(0o700).create(d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(OciError::store(d, e)),
                }
                check_private(d)?;
            }
        }
        store.remove_stale_downloads();
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with SHA-256 `digest` is (or would be).
    pub fn blob_path(&self, digest: &Sha256Hex) -> PathBuf {
        self.blob_dir().join(digest.as_str())
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn index_dir(&self) -> PathBuf {
        self.root.join("index/sha256")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn index_path(&self, manifest: &Sha256Hex) -> PathBuf {
        self.index_dir().join(format!("{manifest}.json"))
    }

    /// Whether the blob `d` describes is present with its declared size.
    pub(crate) fn has(&self, d: &BlobRef) -> bool {
        std::fs::metadata(self.blob_path(&d.digest)).is_ok_and(|m| m.is_file() && m.len() == d.size)
    }

    /// The index entry for `manifest`, if there is a complete one: every blob
    /// it names present with its size. Anything else is a miss (and will be
    /// pulled again).
    pub(crate) fn entry(&self, manifest: &Sha256Hex) -> Option<IndexEntry> {
        let bytes = std::fs::read(self.index_path(manifest)).ok()?;
        let e: IndexEntry = serde_json::from_slice(&bytes).ok()?;
        (e.version == INDEX_VERSION && self.has(&e.wasm) && self.has(&e.manifest_yaml)).then_some(e)
    }

    /// Records `entry` for `manifest`, atomically. Call it only once every
    /// blob it names is in place.
    pub(crate) fn put_entry(
        &self,
        manifest: &Sha256Hex,
        entry: &IndexEntry,
    ) -> Result<(), OciError> {
        let json = serde_json::to_vec_pretty(entry).unwrap_or_default();
        self.persist_bytes(&self.index_path(manifest), &json)
    }

    /// Stores small verified bytes (a manifest, a signature payload) under
    /// their digest.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<Sha256Hex, OciError> {
        let digest = Sha256Hex::of(bytes);
        let path = self.blob_path(&digest);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(digest);
        }
        self.persist_bytes(&path, bytes)?;
        Ok(digest)
    }

    /// Reads a small blob back, checking its digest (signature payloads are
    /// verified on every use; they are a few hundred bytes).
    pub(crate) fn read_verified(&self, digest: &Sha256Hex, limit: u64) -> Option<Vec<u8>> {
        let path = self.blob_path(digest);
        if std::fs::metadata(&path).ok()?.len() > limit {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        (Sha256Hex::of(&bytes) == *digest).then_some(bytes)
    }

    /// Starts a download into `tmp/`.
    pub(crate) fn pending(&self) -> Result<Pending, OciError> {
        let file = tempfile::Builder::new()
            .prefix("pull-")
            .tempfile_in(self.tmp_dir())
            .map_err(|e| OciError::store(self.tmp_dir(), e))?;
        Ok(Pending { file })
    }

    /// Moves a download whose digest was checked into `blobs/`.
    pub(crate) fn commit(&self, pending: Pending, digest: &Sha256Hex) -> Result<PathBuf, OciError> {
        let path = self.blob_path(digest);
        let tmp = pending.file.path().to_path_buf();
        pending
            .file
            .as_file()
            .sync_all()
            .map_err(|e| OciError::store(&tmp, e))?;
        pending
            .file
            .persist(&path)
            .map_err(|e| OciError::store(&tmp, e.error))?;
        Ok(path)
    }

    fn persist_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), OciError> {
        let mut tmp = tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(self.tmp_dir())
            .map_err(|e| OciError::store(self.tmp_dir(), e))?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| OciError::store(tmp.path(), e))?;
        tmp.persist(path)
            .map_err(|e| OciError::store(path, e.error))?;
        Ok(())
    }

    fn remove_stale_downloads(&self) {
        let Ok(dir) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for entry in dir.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl BlobRef {
    pub(crate) fn of(d: &Descriptor) -> Option<BlobRef> {
        Some(BlobRef {
            digest: d.sha256()?,
            size: d.size,
        })
    }
}

/// Refuses a directory that is a symlink, belongs to another user, or that
/// others can write: its entries are trusted without re-hashing.
fn check_private(path: &Path) -> Result<(), OciError> {
    let refuse = |why: String| {
        OciError::store(
            path,
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, why),
        )
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| OciError::store(path, e))?;
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "is a symlink; point the store at the real directory".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(refuse("is not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refuse(format!(
            "belongs to uid {}, not to this user ({me}); artifacts from it could not be trusted: use a store of your own",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "has mode {:o}, which lets other users replace pulled artifacts; run `chmod go-w {}`",
            meta.mode() & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_root_follows_xdg() {
        let env = |xdg: Option<&'static str>| {
            move |k: &str| match k {
                "XDG_CACHE_HOME" => xdg.map(str::to_string),
                "HOME" => Some("/home/u".to_string()),
                _ => None,
            }
        };
        assert_eq!(
            ContentStore::default_root(&env(Some("/x/cache"))),
            Some(PathBuf::from("/x/cache/toka/oci"))
        );
        assert_eq!(
            ContentStore::default_root(&env(Some("relative"))),
            Some(PathBuf::from("/home/u/.cache/toka/oci"))
        );
        assert_eq!(
            ContentStore::default_root(&env(None)),
            Some(PathBuf::from("/home/u/.cache/toka/oci"))
        );
    }

    #[test]
    fn directories_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("oci");
        let s = ContentStore::open(&root).expect("open");
        for d in ["", "blobs", "blobs/sha256", "index", "index/sha256", "tmp"] {
            let mode = std::fs::metadata(s.root().join(d))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
    }

    #[test]
    fn stores_writable_by_others_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("oci");
        ContentStore::open(&root).expect("open");
        std::fs::set_permissions(root.join("blobs"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let e = ContentStore::open(&root).expect_err("world-writable");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
    }

    #[test]
    fn a_blob_with_the_wrong_size_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ContentStore::open(dir.path()).expect("open");
        let d = s.put_blob(b"hello").expect("put");
        let entry = IndexEntry {
            version: INDEX_VERSION,
            reference: "r".into(),
            wasm: BlobRef {
                digest: d.clone(),
                size: 5,
            },
            manifest_yaml: BlobRef {
                digest: d.clone(),
                size: 5,
            },
            signatures: Vec::new(),
        };
        let m = Sha256Hex::of(b"manifest");
        s.put_entry(&m, &entry).expect("entry");
        assert_eq!(s.entry(&m), Some(entry));
        std::fs::write(s.blob_path(&d), b"hell").expect("truncate");
        assert_eq!(s.entry(&m), None);
        assert_eq!(s.read_verified(&d, 100), None);
    }
}
