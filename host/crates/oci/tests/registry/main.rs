//! toka-oci against a real registry (Debian's `docker-registry` on
//! loopback, started per test by `toka_testkit::Registry`): no mocks. Each
//! test skips, saying so, when the registry is not installed
//! (`scripts/install-registry.sh`).

mod access;
mod integrity;
mod push_pull;
mod signing;
mod store;

use std::path::{Path, PathBuf};
use toka_oci::{ContentStore, OciError, Progress, Pulled, Reference, RegistryConfig, VerifyingKey};
use toka_testkit::Registry;

/// Returns early (the test passes, with a note) without a registry.
macro_rules! need_registry {
    () => {
        if !toka_testkit::Registry::available() {
            eprintln!(
                "skipped: {} is not installed (scripts/install-registry.sh)",
                toka_testkit::registry::BINARY
            );
            return;
        }
    };
}
pub(crate) use need_registry;

/// A tool to push: a valid component of about `size` bytes (an empty
/// component with one custom section), and a manifest YAML naming `name`.
pub(crate) struct Tool {
    _dir: tempfile::TempDir,
    pub(crate) wasm: PathBuf,
    pub(crate) wasm_bytes: Vec<u8>,
    pub(crate) yaml: Vec<u8>,
}

impl Tool {
    pub(crate) fn new(name: &str, size: usize) -> Tool {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut payload = format!("{name}-").into_bytes();
        payload.resize(size.max(payload.len()), b'x');
        let mut section = vec![3u8];
        section.extend_from_slice(b"pad");
        section.extend_from_slice(&payload);
        let mut wasm = b"\0asm\x0d\x00\x01\x00".to_vec();
        wasm.push(0);
        leb128(&mut wasm, section.len() as u64);
        wasm.extend_from_slice(&section);
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, &wasm).expect("write wasm");
        let yaml = format!("name: {name}\nversion: 1.0.0\nexecutable:\n  path: {name}.wasm\n")
            .into_bytes();
        Tool {
            _dir: dir,
            wasm: path,
            wasm_bytes: wasm,
            yaml,
        }
    }
}

fn leb128(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn reference(reg: &Registry, repo_and_tag: &str) -> Reference {
    reg.reference(repo_and_tag).parse().expect("reference")
}

/// An empty store in a fresh directory.
pub(crate) fn empty_store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ContentStore::open(&dir.path().join("oci")).expect("store");
    (dir, store)
}

pub(crate) async fn push(reg: &Registry, repo_and_tag: &str, tool: &Tool) -> Reference {
    toka_oci::push(
        &reference(reg, repo_and_tag),
        &tool.yaml,
        &tool.wasm,
        None,
        &RegistryConfig::new(),
    )
    .await
    .expect("push")
}

pub(crate) async fn pull(
    r: &Reference,
    store: &ContentStore,
    keys: &[VerifyingKey],
) -> Result<Pulled, OciError> {
    toka_oci::pull(r, store, &RegistryConfig::new(), keys, &|_: Progress| {}).await
}

/// Every file under the store's root, relative to it.
pub(crate) fn files(store: &ContentStore) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).expect("prefix").display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(store.root(), store.root(), &mut out);
    out.sort();
    out
}

/// An error and all its sources, as `{:#}` would print them.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A fresh key pair (empty password).
pub(crate) fn keypair(dir: &Path) -> (toka_oci::SigningKey, VerifyingKey) {
    let k = toka_oci::signing_keygen(dir, b"").expect("keygen");
    (
        toka_oci::SigningKey::load(&k.private_key, b"").expect("load key"),
        VerifyingKey::load(&k.public_key).expect("load pub"),
    )
}
