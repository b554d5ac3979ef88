//! The artifact a Toka tool is stored as: the CNCF WebAssembly OCI layout
//! (tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact) with one
//! extra layer.
//!
//! ```text
//! OCI image manifest (application/vnd.oci.image.manifest.v1+json)
//!   config:  application/vnd.wasm.config.v0+json     the wasm config JSON
//!   layer 0: application/wasm                        the component, raw bytes
//!   layer 1: application/vnd.toka.manifest.v1+yaml   the tool's manifest YAML
//! ```
//!
//! The manifest YAML travels as a layer so the policy is covered by the same
//! manifest digest (and signature) as the code it governs: nobody can pair
//! signed code with a looser policy. The wasm layer comes first so tools that
//! expect the CNCF single-layer shape find the component where they look.
//!
//! Everything here is pure: bytes in, bytes or a checked layout out. The
//! manifest is serialized once, by us, and pushed raw, so the digest Toka
//! signs is the digest the registry stores.

use crate::error::OciError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toka_spec::manifest::{MAX_EXECUTABLE_BYTES, MAX_MANIFEST_BYTES, Sha256Hex};

/// The OCI image manifest media type (the only manifest type Toka pushes or
/// accepts).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The CNCF wasm config media type.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF wasm layer media type: the component's raw bytes.
pub const WASM_LAYER: &str = "application/wasm";
/// Toka's layer media type for the tool's manifest YAML.
pub const TOKA_MANIFEST_LAYER: &str = "application/vnd.toka.manifest.v1+yaml";

/// OCI manifests larger than this are refused. It is the limit
/// distribution (the reference registry) itself puts on a manifest upload;
/// ours has three descriptors and fits in under 1 KiB.
pub const MAX_OCI_MANIFEST_BYTES: u64 = 4 << 20;

/// The `created` time of every config Toka writes: fixed, so the same tool
/// pushed twice has the same digest (and a re-push is a no-op).
const CREATED: &str = "1970-01-01T00:00:00Z";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes (negative sizes fail to parse).
    pub size: u64,
    /// Descriptor annotations (cosign keeps the signature here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// The descriptor of `bytes` as a blob of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: oci_digest(&Sha256Hex::of(bytes)),
            size: bytes.len() as u64,
            annotations: None,
        }
    }

    /// The hex of a `sha256:` digest; `None` for any other algorithm or a
    /// malformed digest.
    pub fn sha256(&self) -> Option<Sha256Hex> {
        parse_oci_digest(&self.digest)
    }
}

/// An OCI image manifest, with the fields Toka writes and reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// A manifest of `config` and `layers` with Toka's media type.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config,
            layers,
            annotations: None,
        }
    }

    /// The exact bytes to push (and whose SHA-256 is the manifest digest).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses raw manifest bytes as an OCI image manifest.
    pub fn parse(reference: &str, raw: &[u8]) -> Result<ImageManifest, OciError> {
        let m: ImageManifest = serde_json::from_slice(raw).map_err(|e| {
            OciError::invalid(
                reference,
                format!("its manifest is not an OCI image manifest ({e})"),
            )
        })?;
        if m.schema_version != 2 {
            return Err(OciError::invalid(
                reference,
                format!("manifest schemaVersion is {}, not 2", m.schema_version),
            ));
        }
        match m.media_type.as_deref() {
            Some(OCI_MANIFEST) => Ok(m),
            other => Err(OciError::invalid(
                reference,
                format!(
                    "its manifest has media type {}, expected {OCI_MANIFEST}",
                    other.unwrap_or("(none)")
                ),
            )),
        }
    }
}

/// The wasm config JSON (CNCF `application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 creation time (fixed by Toka, for reproducible digests).
    pub created: String,
    /// Who made it (Toka leaves it null).
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip2` for a component, `wasip1` for a core module.
    pub os: String,
    /// The digests of every manifest layer, in order.
    pub layer_digests: Vec<String>,
    /// A component's top-level imports and exports (required for `wasip2`).
    pub component: Option<ComponentInfo>,
}

/// A component's top-level interface, as the CNCF config records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Exported names, such as `toka:plugin/tool@0.1.0`.
    pub exports: Vec<String>,
    /// Imported names, such as `wasi:cli/stdout@0.2.0`.
    pub imports: Vec<String>,
    /// The WIT world it targets, if known (Toka leaves it null).
    pub target: Option<String>,
}

/// A built artifact: the blobs to push and the manifest that ties them.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The config JSON.
    pub config: Vec<u8>,
    /// The exact manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest digest.
    pub digest: Sha256Hex,
}

/// Builds the artifact for `wasm` and `manifest_yaml`, after checking both:
/// sizes under Toka's limits, the wasm a WebAssembly binary, the YAML valid
/// UTF-8 YAML. `what` names the inputs in errors (a path or a reference).
/// `wasm_name` names the component (its path) in errors.
pub fn build(
    what: &str,
    wasm_name: &str,
    wasm: &[u8],
    manifest_yaml: &[u8],
) -> Result<Artifact, OciError> {
    check_yaml(what, manifest_yaml)?;
    if wasm.len() as u64 > MAX_EXECUTABLE_BYTES {
        return Err(OciError::TooLarge {
            reference: what.to_string(),
            what: "wasm".into(),
            limit: MAX_EXECUTABLE_BYTES,
        });
    }
    let (os, component) = inspect_wasm(what, wasm_name, wasm)?;
    let wasm_desc = Descriptor::of(WASM_LAYER, wasm);
    let yaml_desc = Descriptor::of(TOKA_MANIFEST_LAYER, manifest_yaml);
    let config = WasmConfig {
        created: CREATED.to_string(),
        author: None,
        architecture: "wasm".to_string(),
        os: os.to_string(),
        layer_digests: vec![wasm_desc.digest.clone(), yaml_desc.digest.clone()],
        component,
    };
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let manifest = ImageManifest::new(
        Descriptor::of(WASM_CONFIG, &config),
        vec![wasm_desc, yaml_desc],
    )
    .to_bytes();
    let digest = Sha256Hex::of(&manifest);
    Ok(Artifact {
        config,
        manifest,
        digest,
    })
}

/// The two layers of a Toka artifact, picked out of a pulled manifest.
#[derive(Debug, Clone)]
pub struct Layers {
    /// The component.
    pub wasm: Descriptor,
    /// The manifest YAML.
    pub manifest_yaml: Descriptor,
}

/// Checks a pulled manifest's layout and declared sizes, before anything is
/// downloaded: the wasm config, exactly one wasm layer and one manifest YAML
/// layer (no others), `sha256` digests, sizes within Toka's limits.
pub fn select_layers(reference: &str, m: &ImageManifest) -> Result<Layers, OciError> {
    if m.config.media_type != WASM_CONFIG {
        return Err(OciError::invalid(
            reference,
            format!(
                "its config has media type {}, expected {WASM_CONFIG} (is this a container image?)",
                m.config.media_type
            ),
        ));
    }
    let mut wasm = None;
    let mut yaml = None;
    for layer in &m.layers {
        let slot = match layer.media_type.as_str() {
            WASM_LAYER => &mut wasm,
            TOKA_MANIFEST_LAYER => &mut yaml,
            other => {
                return Err(OciError::invalid(
                    reference,
                    format!(
                        "it has a layer of media type {other}; a Toka tool has exactly one {WASM_LAYER} and one {TOKA_MANIFEST_LAYER} layer"
                    ),
                ));
            }
        };
        if slot.replace(layer.clone()).is_some() {
            return Err(OciError::invalid(
                reference,
                format!("it has more than one {} layer", layer.media_type),
            ));
        }
        if layer.sha256().is_none() {
            return Err(OciError::invalid(
                reference,
                format!(
                    "layer digest `{}` is not sha256:<64 hex digits>",
                    layer.digest
                ),
            ));
        }
    }
    let missing = |t: &str| {
        OciError::invalid(
            reference,
            format!("it has no {t} layer; push it with `toka-host push`"),
        )
    };
    let wasm = wasm.ok_or_else(|| missing(WASM_LAYER))?;
    let manifest_yaml = yaml.ok_or_else(|| missing(TOKA_MANIFEST_LAYER))?;
    for (d, what, limit) in [
        (&wasm, "wasm layer", MAX_EXECUTABLE_BYTES),
        (&manifest_yaml, "manifest YAML layer", MAX_MANIFEST_BYTES),
    ] {
        if d.size > limit {
            return Err(OciError::TooLarge {
                reference: reference.to_string(),
                what: format!("{what} ({} bytes declared)", d.size),
                limit,
            });
        }
    }
    Ok(Layers {
        wasm,
        manifest_yaml,
    })
}

/// Checks that a manifest YAML layer is under the size limit, UTF-8, and
/// YAML. (What the YAML says is validated by the caller, once, with the
/// manifest loader.)
pub fn check_yaml(what: &str, yaml: &[u8]) -> Result<(), OciError> {
    if yaml.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(OciError::TooLarge {
            reference: what.to_string(),
            what: "manifest YAML".into(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let text = std::str::from_utf8(yaml)
        .map_err(|e| OciError::invalid(what, format!("the manifest YAML is not UTF-8 ({e})")))?;
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .map_err(|e| OciError::invalid(what, format!("the manifest YAML does not parse: {e}")))?;
    Ok(())
}

/// `wasip2` and the top-level imports and exports for a component,
/// `wasip1` for a core module; an error for anything else.
fn inspect_wasm(
    what: &str,
    wasm_name: &str,
    wasm: &[u8],
) -> Result<(&'static str, Option<ComponentInfo>), OciError> {
    use wasmparser::{Encoding, Parser, Payload};
    let not_wasm =
        |why: String| OciError::invalid(what, format!("{wasm_name} is not WebAssembly ({why})"));
    if !wasm.starts_with(b"\0asm") {
        return Err(not_wasm("it does not start with \\0asm".into()));
    }
    let mut info = ComponentInfo {
        exports: Vec::new(),
        imports: Vec::new(),
        target: None,
    };
    let mut depth = 0usize;
    let mut top = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| not_wasm(e.to_string()))? {
            // parse_all walks nested modules and components inline, each
            // between its own Version and End: only depth 1 is the top level.
            Payload::Version { encoding, .. } => {
                depth += 1;
                if depth == 1 {
                    top = Some(encoding);
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 1 => {
                for i in r {
                    info.imports.push(
                        i.map_err(|e| not_wasm(e.to_string()))?
                            .name
                            .name
                            .to_string(),
                    );
                }
            }
            Payload::ComponentExportSection(r) if depth == 1 => {
                for e in r {
                    info.exports.push(
                        e.map_err(|e| not_wasm(e.to_string()))?
                            .name
                            .name
                            .to_string(),
                    );
                }
            }
            _ => {}
        }
    }
    match top {
        Some(Encoding::Component) => Ok(("wasip2", Some(info))),
        Some(Encoding::Module) => Ok(("wasip1", None)),
        None => Err(not_wasm("no header".into())),
    }
}

/// `sha256:<hex>`.
pub fn oci_digest(hex: &Sha256Hex) -> String {
    format!("sha256:{hex}")
}

/// The hex of `sha256:<hex>`; `None` for anything else.
pub fn parse_oci_digest(digest: &str) -> Option<Sha256Hex> {
    let hex = digest.strip_prefix("sha256:")?;
    // Digests in manifests are lowercase; refuse other spellings rather than
    // normalize them, so the string we compare is the string we hashed.
    if hex.chars().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Sha256Hex::try_from(hex.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty component with one custom section: valid, no imports.
    pub(crate) fn component() -> Vec<u8> {
        let mut w = b"\0asm\x0d\x00\x01\x00".to_vec();
        w.extend_from_slice(&[0, 4, 3, b'p', b'a', b'd']);
        w
    }

    #[test]
    fn the_manifest_lists_wasm_then_yaml_and_is_reproducible() {
        let a = build("t", "t.wasm", &component(), b"name: t\n").expect("build");
        let b = build("t", "t.wasm", &component(), b"name: t\n").expect("build");
        assert_eq!(a.digest, b.digest);
        let m = ImageManifest::parse("t", &a.manifest).expect("parse");
        assert_eq!(m.config.media_type, WASM_CONFIG);
        assert_eq!(
            m.layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>(),
            [WASM_LAYER, TOKA_MANIFEST_LAYER]
        );
        let cfg: WasmConfig = serde_json::from_slice(&a.config).expect("config");
        assert_eq!(
            (cfg.architecture.as_str(), cfg.os.as_str()),
            ("wasm", "wasip2")
        );
        assert_eq!(
            cfg.layer_digests,
            [m.layers[0].digest.clone(), m.layers[1].digest.clone()]
        );
        assert!(select_layers("t", &m).is_ok());
    }

    #[test]
    fn core_modules_are_wasip1_and_other_bytes_are_refused() {
        let a = build("t", "t.wasm", b"\0asm\x01\0\0\0", b"a: 1").expect("module");
        let cfg: WasmConfig = serde_json::from_slice(&a.config).expect("config");
        assert_eq!((cfg.os.as_str(), cfg.component), ("wasip1", None));
        let e = build("t", "t.wasm", b"#!/bin/sh\n", b"a: 1").expect_err("not wasm");
        assert!(e.to_string().contains("not WebAssembly"), "{e}");
        let e = build("t", "t.wasm", &component(), b"a: [").expect_err("bad yaml");
        assert!(e.to_string().contains("does not parse"), "{e}");
        let e = build("t", "t.wasm", &component(), b"\xff").expect_err("not utf-8");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[test]
    fn foreign_layouts_and_oversized_declarations_are_refused() {
        let a = build("t", "t.wasm", &component(), b"a: 1").expect("build");
        let good = ImageManifest::parse("t", &a.manifest).expect("parse");
        let mut extra = good.clone();
        extra
            .layers
            .push(Descriptor::of("application/octet-stream", b"x"));
        let mut missing = good.clone();
        missing.layers.pop();
        let mut image = good.clone();
        image.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        let mut twice = good.clone();
        twice.layers.push(good.layers[0].clone());
        let mut huge = good.clone();
        huge.layers[0].size = MAX_EXECUTABLE_BYTES + 1;
        let mut big_yaml = good.clone();
        big_yaml.layers[1].size = MAX_MANIFEST_BYTES + 1;
        for (m, says) in [
            (extra, "application/octet-stream"),
            (missing, "no application/vnd.toka.manifest.v1+yaml layer"),
            (image, "container image"),
            (twice, "more than one application/wasm"),
            (huge, "wasm layer"),
            (big_yaml, "manifest YAML layer"),
        ] {
            let e = select_layers("oci://h/r:t", &m).expect_err(says);
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn only_oci_image_manifests_parse() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(ImageManifest::parse("t", index).is_err());
        let negative = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:00","size":-1},"layers":[]}"#;
        assert!(ImageManifest::parse("t", negative).is_err());
    }
}
