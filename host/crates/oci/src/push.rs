//! Pushing a tool: the component and its manifest YAML as one artifact
//! ([`crate::artifact`]), blobs first, then the manifest bytes exactly as
//! built (so the digest returned, and signed, is the digest the registry
//! stores), then, with a key, its cosign signature.

use crate::artifact::{self, OCI_MANIFEST, oci_digest};
use crate::error::OciError;
use crate::keys::SigningKey;
use crate::reference::{Reference, ReferenceError};
use crate::registry::{RegistryConfig, Session};
use crate::signature;
use std::io::Read;
use std::path::Path;
use toka_spec::manifest::{MAX_EXECUTABLE_BYTES, Sha256Hex};

/// Pushes `wasm` with `manifest_yaml` to `reference` (a tag), signs it with
/// `sign_key` if given, and returns the pinned reference
/// (`oci://HOST/REPO@sha256:…`).
///
/// Pushing the same files again gives the same digest: the config carries a
/// fixed creation time, and blobs the registry has are not re-sent.
///
/// # Errors
///
/// [`OciError::InvalidReference`] for a reference with a digest;
/// [`OciError::Input`] if `wasm` cannot be read; [`OciError::TooLarge`] and
/// [`OciError::InvalidArtifact`] for inputs over Toka's limits, a `wasm`
/// that is not WebAssembly or YAML that does not parse; the registry errors.
pub async fn push(
    reference: &Reference,
    manifest_yaml: &[u8],
    wasm: &Path,
    sign_key: Option<&SigningKey>,
    cfg: &RegistryConfig,
) -> Result<Reference, OciError> {
    if reference.digest().is_some() {
        return Err(ReferenceError {
            input: reference.to_string(),
            why: "a push names a tag, not a digest (the digest is computed from what is pushed)"
                .into(),
        }
        .into());
    }
    let ref_s = reference.to_string();
    let wasm_bytes = read_wasm(&ref_s, wasm)?;
    let built = artifact::build(
        &ref_s,
        &wasm.display().to_string(),
        &wasm_bytes,
        manifest_yaml,
    )?;

    let session = Session::open(cfg, reference)?;
    session.prepare().await;
    let oref = reference.to_oci();
    for blob in [wasm_bytes, manifest_yaml.to_vec(), built.config] {
        let d = oci_digest(&Sha256Hex::of(&blob));
        let present = session
            .client
            .blob_exists(&oref, &d)
            .await
            .map_err(|e| session.map_error(e, reference))?;
        if !present {
            session
                .client
                .push_blob(&oref, blob, &d)
                .await
                .map_err(|e| session.map_error(e, reference))?;
        }
    }
    session
        .client
        .push_manifest_raw(
            &oref,
            built.manifest,
            reqwest013::header::HeaderValue::from_static(OCI_MANIFEST),
        )
        .await
        .map_err(|e| session.map_error(e, reference))?;
    if let Some(key) = sign_key {
        signature::sign_and_push(&session, reference, &built.digest, key).await?;
    }
    Ok(reference.pinned(built.digest))
}

/// Reads the component, refusing it unread if it is over the limit.
fn read_wasm(reference: &str, path: &Path) -> Result<Vec<u8>, OciError> {
    let input = |source| OciError::Input {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(input)?;
    let too_large = || OciError::TooLarge {
        reference: reference.to_string(),
        what: format!("wasm {}", path.display()),
        limit: MAX_EXECUTABLE_BYTES,
    };
    if f.metadata().map_err(input)?.len() > MAX_EXECUTABLE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    f.take(MAX_EXECUTABLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(input)?;
    if bytes.len() as u64 > MAX_EXECUTABLE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}
