//! Bytes that are not the pushed ones never enter the store: a tampered
//! blob or manifest, a pinned digest that does not match, a registry that
//! stops mid-pull, a layer declared larger than the limit.

use crate::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use toka_oci::artifact::{Descriptor, ImageManifest};

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("sha256 digest")
}

/// The pushed manifest, as the registry stores it.
fn stored_manifest(reg: &Registry, pinned: &Reference) -> ImageManifest {
    let hex = pinned.digest().expect("pinned").as_str().to_string();
    let raw = std::fs::read(reg.blob_path(&hex)).expect("manifest blob");
    ImageManifest::parse("test", &raw).expect("manifest")
}

#[tokio::test]
async fn a_tampered_blob_is_refused_and_leaves_nothing_in_the_store() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("tamper", 4000);
    let pinned = push(&reg, "toka/tamper:1", &tool).await;
    let m = stored_manifest(&reg, &pinned);
    reg.tamper(hex_of(&m.layers[0].digest));

    let (_d, store) = empty_store();
    let e = pull(&pinned, &store, &[]).await.expect_err("tampered wasm");
    match &e {
        OciError::DigestMismatch {
            what,
            expected,
            reference,
            ..
        } => {
            assert_eq!(what, "wasm layer");
            assert!(expected.starts_with(&m.layers[0].digest), "{expected}");
            assert_eq!(reference, &pinned.to_string());
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::HashMismatch);
    assert_eq!(files(&store), Vec::<String>::new(), "nothing may be stored");
}

#[tokio::test]
async fn a_manifest_that_does_not_match_its_pinned_digest_is_refused() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("pin", 100);
    let pinned = push(&reg, "toka/pin:1", &tool).await;
    // The registry now serves other bytes under the pinned digest (and its
    // Docker-Content-Digest header still claims the pinned one).
    reg.tamper(pinned.digest().expect("pinned").as_str());

    let (_d, store) = empty_store();
    for r in [pinned.clone(), reference(&reg, "toka/pin:1")] {
        let e = pull(&r, &store, &[]).await.expect_err("tampered manifest");
        match &e {
            OciError::DigestMismatch { what, expected, .. } => {
                assert_eq!(what, "manifest");
                assert_eq!(
                    expected,
                    &format!("sha256:{}", pinned.digest().expect("pinned"))
                );
            }
            other => panic!("{r}: expected a digest mismatch, got {other}"),
        }
    }
    assert_eq!(files(&store), Vec::<String>::new());
}

#[tokio::test]
async fn a_pinned_digest_the_registry_does_not_have_is_not_found() {
    need_registry!();
    let reg = Registry::start();
    push(&reg, "toka/nodigest:1", &Tool::new("nodigest", 10)).await;
    let other = toka_spec::manifest::Sha256Hex::of(b"some other manifest");
    let r: Reference = format!("oci://{}/toka/nodigest@sha256:{other}", reg.host())
        .parse()
        .expect("ref");
    let (_d, store) = empty_store();
    let e = pull(&r, &store, &[]).await.expect_err("unknown digest");
    assert!(matches!(e, OciError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(&other.to_string()), "{e}");
}

#[tokio::test]
async fn a_registry_stopped_mid_pull_leaves_no_partial_entry() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("big", 64 << 20);
    let pinned = push(&reg, "toka/big:1", &tool).await;
    let (_d, store) = empty_store();
    let calls = AtomicUsize::new(0);
    let stop_after_first_chunk = |p: Progress| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            assert!(p.done < p.total, "the first chunk is not the whole layer");
            reg.stop();
        }
    };
    let e = toka_oci::pull(
        &pinned,
        &store,
        &RegistryConfig::new(),
        &[],
        &stop_after_first_chunk,
    )
    .await
    .expect_err("registry stopped");
    assert!(matches!(e, OciError::Unreachable { .. }), "{}", chain(&e));
    assert!(calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        files(&store),
        Vec::<String>::new(),
        "no partial download may remain"
    );
}

#[tokio::test]
async fn a_layer_declared_over_the_limit_is_refused_before_downloading() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("huge", 100);
    let pinned = push(&reg, "toka/huge:1", &tool).await;
    // Same blobs, but a manifest that declares a 1 GiB wasm layer.
    let mut m = stored_manifest(&reg, &pinned);
    m.layers[0].size = 1 << 30;
    put_manifest(&reg, "toka/huge", "lying", &m).await;

    let (_d, store) = empty_store();
    let calls = AtomicUsize::new(0);
    let e = toka_oci::pull(
        &reference(&reg, "toka/huge:lying"),
        &store,
        &RegistryConfig::new(),
        &[],
        &|_: Progress| {
            calls.fetch_add(1, Ordering::SeqCst);
        },
    )
    .await
    .expect_err("over the limit");
    match &e {
        OciError::TooLarge { what, limit, .. } => {
            assert!(what.contains("wasm layer"), "{what}");
            assert_eq!(*limit, toka_spec::manifest::MAX_EXECUTABLE_BYTES);
        }
        other => panic!("expected too large, got {other}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was downloaded");
    assert_eq!(files(&store), Vec::<String>::new());
}

#[tokio::test]
async fn a_layer_whose_size_is_misdeclared_is_refused() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("short", 1000);
    let pinned = push(&reg, "toka/short:1", &tool).await;
    let mut m = stored_manifest(&reg, &pinned);
    m.layers[0].size -= 1;
    put_manifest(&reg, "toka/short", "short", &m).await;
    let (_d, store) = empty_store();
    let e = pull(&reference(&reg, "toka/short:short"), &store, &[])
        .await
        .expect_err("size");
    assert!(matches!(e, OciError::DigestMismatch { .. }), "{e}");
    assert_eq!(files(&store), Vec::<String>::new());
}

#[tokio::test]
async fn a_container_image_is_not_a_tool() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("image", 100);
    let pinned = push(&reg, "toka/image:1", &tool).await;
    let mut m = stored_manifest(&reg, &pinned);
    m.layers[1] = Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        ..m.layers[1].clone()
    };
    put_manifest(&reg, "toka/image", "image", &m).await;
    let (_d, store) = empty_store();
    let e = pull(&reference(&reg, "toka/image:image"), &store, &[])
        .await
        .expect_err("layout");
    assert!(matches!(e, OciError::InvalidArtifact { .. }), "{e}");
    assert!(e.to_string().contains("tar+gzip"), "{e}");
}

/// Pushes `m` as is (its blobs are already in the registry), with
/// oci-client directly: toka-oci never pushes a manifest it did not build.
async fn put_manifest(reg: &Registry, repo: &str, tag: &str, m: &ImageManifest) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::try_from(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::HttpsExcept(vec![reg.host()]),
        ..Default::default()
    })
    .expect("client");
    let r = oci_client::Reference::with_tag(reg.host(), repo.to_string(), tag.to_string());
    client
        .push_manifest_raw(
            &r,
            m.to_bytes(),
            reqwest013::header::HeaderValue::from_static(toka_oci::artifact::OCI_MANIFEST),
        )
        .await
        .expect("push manifest");
}
