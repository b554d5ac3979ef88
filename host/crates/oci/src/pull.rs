//! Pulling a tool: reference → manifest digest → (signature) → layers into
//! the store, every byte checked against a digest before it is kept.
//!
//! Order matters. The manifest is fetched (capped) and its digest computed
//! from its bytes; a pinned reference must match it. Its layout and declared
//! sizes are checked before any layer is downloaded; with trusted keys, the
//! signature is checked before any code is downloaded. Each layer streams
//! into a temporary file while its SHA-256 and length are computed, and
//! stops at the first error: oci-client's verifying stream, after a digest
//! mismatch, yields the same error forever. Only when every layer has
//! arrived intact does anything enter the store.

use crate::artifact::{
    self, Descriptor, ImageManifest, MAX_OCI_MANIFEST_BYTES, OCI_MANIFEST, oci_digest,
};
use crate::error::OciError;
use crate::keys::{VerifyingKey, key_names};
use crate::reference::Reference;
use crate::registry::{RegistryConfig, Session};
use crate::signature::{self, MAX_PAYLOAD_BYTES};
use crate::store::{BlobRef, ContentStore, IndexEntry, Pending};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use toka_spec::manifest::{MAX_EXECUTABLE_BYTES, MAX_MANIFEST_BYTES, Sha256Hex, hex};

/// A pulled tool, in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The OCI manifest digest (what signatures cover).
    pub manifest_digest: Sha256Hex,
    /// The pinned reference: `oci://HOST/REPO@sha256:…`.
    pub reference: Reference,
    /// The tool's manifest YAML, in the store.
    pub manifest_yaml: PathBuf,
    /// The component, in the store.
    pub wasm: PathBuf,
    /// SHA-256 of the component (for the manifest's pin).
    pub wasm_digest: Sha256Hex,
    /// The trusted key whose signature was verified, when keys were given.
    pub signed_by: Option<PathBuf>,
    /// True when everything came from the store, without the network.
    pub from_store: bool,
}

/// Which layer a [`Progress`] report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The component.
    Wasm,
    /// The manifest YAML.
    ManifestYaml,
}

impl Layer {
    fn what(self) -> &'static str {
        match self {
            Layer::Wasm => "wasm layer",
            Layer::ManifestYaml => "manifest YAML layer",
        }
    }
}

/// How far one layer's download is, reported after each chunk (and once,
/// complete, for a layer already in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Which layer.
    pub layer: Layer,
    /// Bytes received so far.
    pub done: u64,
    /// The layer's declared size.
    pub total: u64,
}

/// Pulls the tool at `reference` into `store`.
///
/// A pinned reference already in the store is served from it, without the
/// network (with `verify_keys`, only if a signature recorded in the store
/// verifies; otherwise the registry is asked for newer signatures). A tag is
/// always resolved by the registry, since tags move. With `verify_keys`, a
/// valid cosign signature of the manifest digest by one of them is required.
///
/// # Errors
///
/// Every [`OciError`] kind: the registry unreachable or refusing access, the
/// reference absent, a digest mismatch (pinned digest, manifest, layer), a
/// size over the limits, an unsigned or badly signed artifact, an artifact
/// that is not a Toka tool, a store that cannot be used.
pub async fn pull(
    reference: &Reference,
    store: &ContentStore,
    cfg: &RegistryConfig,
    verify_keys: &[VerifyingKey],
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Pulled, OciError> {
    if let Some(d) = reference.digest()
        && let Some(entry) = store.entry(d)
        && let Some(p) = from_store(
            store,
            reference.pinned(d.clone()),
            &entry,
            verify_keys,
            progress,
        )
    {
        return Ok(p);
    }

    let session = Session::open(cfg, reference)?;
    session.prepare().await;
    let fetched = session
        .fetch_manifest(reference, OCI_MANIFEST, MAX_OCI_MANIFEST_BYTES)
        .await?;
    let digest = Sha256Hex::of(&fetched.bytes);
    let mismatch = |expected: String| OciError::DigestMismatch {
        reference: reference.to_string(),
        what: "manifest".into(),
        expected,
        actual: oci_digest(&digest),
    };
    if let Some(pin) = reference.digest()
        && *pin != digest
    {
        return Err(mismatch(oci_digest(pin)));
    }
    // A registry serving a tampered manifest still sends the digest it was
    // stored under.
    if let Some(h) = fetched.header_digest.filter(|h| h.starts_with("sha256:"))
        && h != oci_digest(&digest)
    {
        return Err(mismatch(h));
    }
    let pinned = reference.pinned(digest.clone());
    let pinned_s = pinned.to_string();
    let manifest = ImageManifest::parse(&pinned_s, &fetched.bytes)?;
    let layers = artifact::select_layers(&pinned_s, &manifest)?;

    let mut signatures = Vec::new();
    let mut signed_by = None;
    if !verify_keys.is_empty() {
        let (found, examined) = signature::fetch(&session, &pinned, &digest, verify_keys).await?;
        signed_by = found.iter().find_map(|(payload, s)| {
            signature::verify_one(verify_keys, &digest, payload, &s.signature)
                .map(|k| k.path().to_path_buf())
        });
        if signed_by.is_none() {
            return Err(OciError::BadSignature {
                reference: pinned_s,
                keys: key_names(verify_keys),
                found: examined,
            });
        }
        signatures = found;
    }

    let oref = pinned.to_oci();
    let layer = |kind, d, limit| Download {
        session: &session,
        store,
        pinned: &pinned,
        oref: &oref,
        kind,
        descriptor: d,
        limit,
        progress,
    };
    let wasm = layer(Layer::Wasm, &layers.wasm, MAX_EXECUTABLE_BYTES)
        .run()
        .await?;
    let yaml = layer(
        Layer::ManifestYaml,
        &layers.manifest_yaml,
        MAX_MANIFEST_BYTES,
    )
    .run()
    .await?;
    let yaml_path = yaml.path(store);
    let text = std::fs::read(&yaml_path).map_err(|e| OciError::store(&yaml_path, e))?;
    artifact::check_yaml(&pinned_s, &text)?;

    // Everything arrived intact: now, and only now, fill the store.
    let wasm = wasm.keep(store)?;
    let manifest_yaml = yaml.keep(store)?;
    store.put_blob(&fetched.bytes)?;
    let mut stored = Vec::new();
    for (payload, s) in signatures {
        store.put_blob(&payload)?;
        stored.push(s);
    }
    let entry = IndexEntry::new(pinned_s, wasm, manifest_yaml, stored);
    store.put_entry(&digest, &entry)?;
    Ok(pulled(store, digest, pinned, &entry, signed_by, false))
}

/// One layer to bring into the store.
struct Download<'a> {
    session: &'a Session,
    store: &'a ContentStore,
    pinned: &'a Reference,
    oref: &'a oci_client::Reference,
    kind: Layer,
    descriptor: &'a Descriptor,
    limit: u64,
    progress: &'a (dyn Fn(Progress) + Send + Sync),
}

/// A layer that arrived intact: already in the store, or downloaded and
/// waiting to be moved in.
struct Arrived {
    blob: BlobRef,
    pending: Option<Pending>,
}

impl Download<'_> {
    async fn run(self) -> Result<Arrived, OciError> {
        let d = self.descriptor;
        let blob = BlobRef::of(d)
            .ok_or_else(|| OciError::invalid(self.pinned, "a layer digest is not sha256"))?;
        let report = |done| {
            (self.progress)(Progress {
                layer: self.kind,
                done,
                total: d.size,
            })
        };
        if self.store.has(&blob) {
            report(d.size);
            return Ok(Arrived {
                blob,
                pending: None,
            });
        }
        let mut pending = self.store.pending()?;
        stream_blob(
            self.session,
            self.pinned,
            self.oref,
            d,
            self.kind.what(),
            self.limit,
            &mut |chunk, done| {
                pending.write(chunk)?;
                report(done);
                Ok(())
            },
        )
        .await?;
        Ok(Arrived {
            blob,
            pending: Some(pending),
        })
    }
}

impl Arrived {
    fn path(&self, store: &ContentStore) -> PathBuf {
        match &self.pending {
            Some(p) => p.path().to_path_buf(),
            None => store.blob_path(&self.blob.digest),
        }
    }

    fn keep(self, store: &ContentStore) -> Result<BlobRef, OciError> {
        if let Some(p) = self.pending {
            store.commit(p, &self.blob.digest)?;
        }
        Ok(self.blob)
    }
}

/// A pull served by the store, if it can be: `None` when trusted keys were
/// given and no recorded signature verifies.
fn from_store(
    store: &ContentStore,
    pinned: Reference,
    entry: &IndexEntry,
    keys: &[VerifyingKey],
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Option<Pulled> {
    let digest = pinned.digest()?.clone();
    let signed_by = if keys.is_empty() {
        None
    } else {
        Some(signature::verify_any(
            keys,
            &digest,
            &entry.signatures,
            &|d| store.read_verified(d, MAX_PAYLOAD_BYTES),
        )?)
    };
    for (layer, b) in [
        (Layer::Wasm, &entry.wasm),
        (Layer::ManifestYaml, &entry.manifest_yaml),
    ] {
        progress(Progress {
            layer,
            done: b.size,
            total: b.size,
        });
    }
    Some(pulled(store, digest, pinned, entry, signed_by, true))
}

fn pulled(
    store: &ContentStore,
    manifest_digest: Sha256Hex,
    pinned: Reference,
    entry: &IndexEntry,
    signed_by: Option<PathBuf>,
    from_store: bool,
) -> Pulled {
    Pulled {
        manifest_digest,
        reference: pinned,
        manifest_yaml: store.blob_path(&entry.manifest_yaml.digest),
        wasm: store.blob_path(&entry.wasm.digest),
        wasm_digest: entry.wasm.digest.clone(),
        signed_by,
        from_store,
    }
}

/// Downloads a small blob (a signature payload) into memory, checked like a
/// layer.
pub(crate) async fn download_small(
    session: &Session,
    reference: &Reference,
    oref: &oci_client::Reference,
    d: &Descriptor,
    limit: u64,
) -> Result<Vec<u8>, OciError> {
    let mut out = Vec::new();
    stream_blob(
        session,
        reference,
        oref,
        d,
        "signature payload",
        limit,
        &mut |c, _| {
            out.extend_from_slice(c);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// Where [`stream_blob`] puts each chunk, with the bytes received so far.
type Sink<'a> = dyn FnMut(&[u8], u64) -> Result<(), OciError> + Send + 'a;

/// Streams the blob `d` describes to `sink`, refusing it as soon as it is
/// over its declared size or `limit`, and at the end unless its length and
/// SHA-256 are the declared ones. `sink` gets each chunk and the bytes so
/// far.
async fn stream_blob(
    session: &Session,
    reference: &Reference,
    oref: &oci_client::Reference,
    d: &Descriptor,
    what: &str,
    limit: u64,
    sink: &mut Sink<'_>,
) -> Result<(), OciError> {
    let ref_s = reference.to_string();
    let too_large = || OciError::TooLarge {
        reference: ref_s.clone(),
        what: format!("{what} ({} bytes declared)", d.size),
        limit,
    };
    let mismatch = |actual: String| OciError::DigestMismatch {
        reference: ref_s.clone(),
        what: what.to_string(),
        expected: format!("{} ({} bytes)", d.digest, d.size),
        actual,
    };
    if d.size > limit {
        return Err(too_large());
    }
    let mut stream = session
        .client
        .pull_blob_stream(oref, d.digest.as_str())
        .await
        .map_err(|e| session.map_error(e, reference))?;
    if let Some(len) = stream.content_length
        && len != d.size
    {
        return Err(mismatch(format!("a body of {len} bytes")));
    }
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                done += chunk.len() as u64;
                if done > d.size {
                    return Err(mismatch(format!("more than {} bytes", d.size)));
                }
                hasher.update(&chunk);
                sink(&chunk, done)?;
            }
            // oci-client's own check fails after the last byte; ours, below,
            // decides. Stop here either way: that stream repeats its error
            // forever instead of ending.
            Err(_) if done == d.size => break,
            Err(e) => return Err(session.unreachable(Box::new(e))),
        }
    }
    if done != d.size {
        return Err(mismatch(format!("{done} bytes")));
    }
    let actual = hex(&hasher.finalize());
    if Some(actual.as_str()) != d.sha256().as_ref().map(Sha256Hex::as_str) {
        return Err(mismatch(format!("sha256:{actual}")));
    }
    Ok(())
}
