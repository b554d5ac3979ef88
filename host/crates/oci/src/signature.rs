//! Cosign-compatible signatures, key-based and offline (no Fulcio, no Rekor),
//! stored as cosign stores them: an image manifest at tag
//! `sha256-<manifest hex>.sig` in the same repository (registries such as
//! distribution 2.8 have no referrers API), with one layer per signature.
//!
//! ```text
//! layer media type: application/vnd.dev.cosign.simplesigning.v1+json
//! layer blob:       {"critical":{"identity":{"docker-reference":"HOST/REPO"},
//!                    "image":{"docker-manifest-digest":"sha256:…"},
//!                    "type":"cosign container image signature"},"optional":null}
//! annotation:       dev.cosignproject.cosign/signature = base64(DER(ECDSA-P256(SHA-256(blob))))
//! ```
//!
//! The signature covers the payload bytes exactly as stored, and a payload
//! counts only if it names the digest being verified; `docker-reference` is
//! not checked (mirrors and relocations change it; cosign does the same).
//! A new signature is appended to the existing `.sig` manifest, as cosign
//! does, so several keys can sign one digest.

use crate::artifact::{Descriptor, ImageManifest, OCI_MANIFEST, oci_digest};
use crate::error::OciError;
use crate::keys::{SigningKey, VerifyingKey, key_names};
use crate::reference::Reference;
use crate::registry::Session;
use crate::store::StoredSignature;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use toka_spec::manifest::Sha256Hex;

/// The media type of a cosign simple-signing payload layer.
pub const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign payload.
const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The config media type of the signature image (ignored by verifiers).
const SIG_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Payloads are a few hundred bytes.
pub(crate) const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// More signatures than this on one digest are not examined.
const MAX_SIGNATURES: usize = 64;

/// The tag cosign keeps the signatures of manifest `digest` at.
pub fn signature_tag(digest: &Sha256Hex) -> String {
    format!("sha256-{digest}.sig")
}

/// The payload cosign signs for `digest` in `reference`'s repository, as Go's
/// `json.Marshal` writes it (field order matters: these bytes are signed).
pub fn payload(reference: &Reference, digest: &Sha256Hex) -> Vec<u8> {
    let identity = serde_json::to_string(&reference.repository_name()).unwrap_or_default();
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{identity}}},"image":{{"docker-manifest-digest":"{}"}},"type":"{PAYLOAD_TYPE}"}},"optional":null}}"#,
        oci_digest(digest)
    )
    .into_bytes()
}

/// Go-containerregistry's empty-image config, as cosign writes it, listing
/// the payloads as its diff ids.
fn sig_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let history: Vec<_> = layers
        .iter()
        .map(|_| serde_json::json!({"created": "0001-01-01T00:00:00Z"}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {}
    }))
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Which trusted key a signature of `digest` verifies with, if any:
/// `signature` (base64 DER) must verify over the exact `payload` bytes, and
/// the payload must be a cosign payload naming `digest`.
pub(crate) fn verify_one<'k>(
    keys: &'k [VerifyingKey],
    digest: &Sha256Hex,
    payload: &[u8],
    signature: &str,
) -> Option<&'k VerifyingKey> {
    let der = B64.decode(signature.trim()).ok()?;
    let key = keys.iter().find(|k| k.verifies(payload, &der))?;
    // Parsed only after the signature checked out: never act on unsigned JSON.
    let p: Payload = serde_json::from_slice(payload).ok()?;
    (p.critical.kind == PAYLOAD_TYPE && p.critical.image.digest == oci_digest(digest))
        .then_some(key)
}

/// The first signature among `sigs` that a trusted key verifies for
/// `digest`, reading payloads with `payload_of`.
pub(crate) fn verify_any(
    keys: &[VerifyingKey],
    digest: &Sha256Hex,
    sigs: &[StoredSignature],
    payload_of: &dyn Fn(&Sha256Hex) -> Option<Vec<u8>>,
) -> Option<PathBuf> {
    sigs.iter().find_map(|s| {
        let payload = payload_of(&s.payload)?;
        verify_one(keys, digest, &payload, &s.signature).map(|k| k.path().to_path_buf())
    })
}

/// Signs manifest `digest` of `reference` with `key` and pushes the
/// signature, appending to the signatures already there.
pub(crate) async fn sign_and_push(
    session: &Session,
    reference: &Reference,
    digest: &Sha256Hex,
    key: &SigningKey,
) -> Result<(), OciError> {
    let sig_ref = reference.at_tag(signature_tag(digest));
    let payload = payload(reference, digest);
    let signature = B64.encode(key.sign_der(&payload));
    let mut layer = Descriptor::of(SIMPLESIGNING, &payload);
    layer.annotations = Some(BTreeMap::from([(
        SIGNATURE_ANNOTATION.to_string(),
        signature,
    )]));

    let mut layers = match existing(session, &sig_ref).await? {
        Some(m) => m.layers,
        None => Vec::new(),
    };
    if layers.contains(&layer) {
        // ECDSA here is deterministic (RFC 6979): the same key already signed.
        return Ok(());
    }
    layers.push(layer);
    let config = sig_config(&layers);
    let manifest = ImageManifest::new(Descriptor::of(SIG_CONFIG, &config), layers).to_bytes();

    let oref = sig_ref.to_oci();
    for blob in [payload, config] {
        let d = oci_digest(&Sha256Hex::of(&blob));
        session
            .client
            .push_blob(&oref, blob, &d)
            .await
            .map_err(|e| session.map_error(e, &sig_ref))?;
    }
    session
        .client
        .push_manifest_raw(&oref, manifest, content_type())
        .await
        .map_err(|e| session.map_error(e, &sig_ref))?;
    Ok(())
}

/// The `.sig` manifest at `sig_ref`, if there is one.
async fn existing(
    session: &Session,
    sig_ref: &Reference,
) -> Result<Option<ImageManifest>, OciError> {
    match session
        .fetch_manifest(
            sig_ref,
            OCI_MANIFEST,
            crate::artifact::MAX_OCI_MANIFEST_BYTES,
        )
        .await
    {
        Ok(m) => ImageManifest::parse(&sig_ref.to_string(), &m.bytes).map(Some),
        Err(OciError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Fetches the signatures of `digest` (pinned as `pinned`): each payload
/// blob downloaded (capped, digest-checked) and returned with its
/// signature, and how many cosign layers there were. A payload that is
/// oversized or does not match its digest is skipped (it is counted, and
/// cannot verify), so one damaged signature does not hide a good one.
///
/// # Errors
///
/// [`OciError::Unsigned`] if there is no `.sig` manifest or it has no
/// cosign layer; transport errors.
pub(crate) async fn fetch(
    session: &Session,
    pinned: &Reference,
    digest: &Sha256Hex,
    keys: &[VerifyingKey],
) -> Result<(Vec<(Vec<u8>, StoredSignature)>, usize), OciError> {
    let unsigned = || OciError::Unsigned {
        reference: pinned.to_string(),
        keys: key_names(keys),
    };
    let sig_ref = pinned.at_tag(signature_tag(digest));
    let Some(manifest) = existing(session, &sig_ref).await? else {
        return Err(unsigned());
    };
    let mut out = Vec::new();
    let mut examined = 0;
    let oref = sig_ref.to_oci();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLESIGNING)
        .take(MAX_SIGNATURES)
    {
        examined += 1;
        let (Some(sig), Some(hex)) = (
            layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION)),
            layer.sha256(),
        ) else {
            continue;
        };
        if layer.size > MAX_PAYLOAD_BYTES {
            continue;
        }
        let payload =
            match crate::pull::download_small(session, &sig_ref, &oref, layer, MAX_PAYLOAD_BYTES)
                .await
            {
                Ok(p) => p,
                Err(OciError::DigestMismatch { .. } | OciError::TooLarge { .. }) => continue,
                Err(e) => return Err(e),
            };
        out.push((
            payload,
            StoredSignature {
                payload: hex,
                signature: sig.clone(),
            },
        ));
    }
    if examined == 0 {
        return Err(unsigned());
    }
    Ok((out, examined))
}

fn content_type() -> reqwest013::header::HeaderValue {
    reqwest013::header::HeaderValue::from_static(OCI_MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3b99b2a5f1ed8e3eec39a2d8a35b2e1c1cf5d7f8e8a3b5c2d1e0f9a8b7c6d5e4";

    fn digest() -> Sha256Hex {
        Sha256Hex::try_from(HEX.to_string()).expect("hex")
    }

    fn key() -> SigningKey {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = crate::keys::signing_keygen(dir.path(), b"").expect("keygen");
        SigningKey::load(&k.private_key, b"").expect("load")
    }

    #[test]
    fn the_payload_is_byte_for_byte_what_cosign_writes() {
        let r: Reference = "oci://127.0.0.1:5000/toka/echo:1.0.0".parse().expect("ref");
        assert_eq!(
            String::from_utf8(payload(&r, &digest())).expect("utf-8"),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/toka/echo"}},"image":{{"docker-manifest-digest":"sha256:{HEX}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(signature_tag(&digest()), format!("sha256-{HEX}.sig"));
    }

    #[test]
    fn a_signature_counts_for_the_right_key_and_digest_only() {
        let r: Reference = "oci://h/r:t".parse().expect("ref");
        let (signer, other) = (key(), key());
        let p = payload(&r, &digest());
        let sig = B64.encode(signer.sign_der(&p));
        let trusted = [other.verifying_key(), signer.verifying_key()];
        assert!(verify_one(&trusted, &digest(), &p, &sig).is_some());
        assert!(verify_one(&[other.verifying_key()], &digest(), &p, &sig).is_none());
        let elsewhere = Sha256Hex::of(b"another manifest");
        assert!(verify_one(&trusted, &elsewhere, &p, &sig).is_none());
        let mut tampered = p.clone();
        tampered[10] ^= 1;
        assert!(verify_one(&trusted, &digest(), &tampered, &sig).is_none());
        assert!(verify_one(&trusted, &digest(), &p, "not base64!").is_none());
    }
}
