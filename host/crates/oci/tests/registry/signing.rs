//! Signed pushes and verified pulls: the right key passes, an unsigned
//! artifact or another key's signature is refused, naming the key file.

use crate::*;

async fn push_signed(
    reg: &Registry,
    repo_and_tag: &str,
    tool: &Tool,
    key: &toka_oci::SigningKey,
) -> Reference {
    toka_oci::push(
        &reference(reg, repo_and_tag),
        &tool.yaml,
        &tool.wasm,
        Some(key),
        &RegistryConfig::new(),
    )
    .await
    .expect("signed push")
}

#[tokio::test]
async fn a_signed_push_pulls_with_the_right_key_online_and_offline() {
    need_registry!();
    let reg = Registry::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let (sk, vk) = keypair(keys.path());
    let tool = Tool::new("signed", 500);
    let pinned = push_signed(&reg, "toka/signed:1", &tool, &sk).await;

    let (_d, store) = empty_store();
    let p = pull(
        &reference(&reg, "toka/signed:1"),
        &store,
        std::slice::from_ref(&vk),
    )
    .await
    .expect("verified pull");
    assert_eq!(p.reference, pinned);
    assert_eq!(p.signed_by.as_deref(), Some(vk.path()));
    assert_eq!(std::fs::read(&p.wasm).expect("wasm"), tool.wasm_bytes);

    // The signature was recorded with the entry: verified again offline.
    reg.stop();
    let again = pull(&pinned, &store, std::slice::from_ref(&vk))
        .await
        .expect("offline verified pull");
    assert!(again.from_store);
    assert_eq!(again.signed_by.as_deref(), Some(vk.path()));
}

#[tokio::test]
async fn an_unsigned_artifact_is_refused_when_a_key_is_required() {
    need_registry!();
    let reg = Registry::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let (_sk, vk) = keypair(keys.path());
    let pinned = push(&reg, "toka/unsigned:1", &Tool::new("unsigned", 100)).await;
    let (_d, store) = empty_store();
    let e = pull(&pinned, &store, &[vk]).await.expect_err("unsigned");
    match &e {
        OciError::Unsigned { reference, keys: k } => {
            assert_eq!(reference, &pinned.to_string());
            assert!(k.contains("cosign.pub"), "{k}");
        }
        other => panic!("expected unsigned, got {other}"),
    }
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::Denied);
    assert_eq!(
        files(&store),
        Vec::<String>::new(),
        "no code is downloaded for an unsigned artifact"
    );
}

#[tokio::test]
async fn another_keys_signature_is_refused_naming_the_trusted_key() {
    need_registry!();
    let reg = Registry::start();
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (signer, _) = keypair(a.path());
    let (_, trusted) = keypair(b.path());
    let pinned = push_signed(
        &reg,
        "toka/wrongkey:1",
        &Tool::new("wrongkey", 100),
        &signer,
    )
    .await;
    let (_d, store) = empty_store();
    let e = pull(&pinned, &store, std::slice::from_ref(&trusted))
        .await
        .expect_err("wrong key");
    match &e {
        OciError::BadSignature {
            reference,
            keys,
            found,
        } => {
            assert_eq!(reference, &pinned.to_string());
            assert_eq!(keys, &trusted.path().display().to_string());
            assert_eq!(*found, 1);
        }
        other => panic!("expected a bad signature, got {other}"),
    }
    assert!(
        e.to_string()
            .contains(&trusted.path().display().to_string()),
        "{e}"
    );
    assert_eq!(files(&store), Vec::<String>::new());
}

#[tokio::test]
async fn two_keys_can_sign_one_digest() {
    need_registry!();
    let reg = Registry::start();
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let ((ka, va), (kb, vb)) = (keypair(a.path()), keypair(b.path()));
    let tool = Tool::new("twice", 100);
    let pa = push_signed(&reg, "toka/twice:1", &tool, &ka).await;
    let pb = push_signed(&reg, "toka/twice:1", &tool, &kb).await;
    // Signing again with the same key adds nothing.
    push_signed(&reg, "toka/twice:1", &tool, &ka).await;
    assert_eq!(pa, pb);
    for vk in [va, vb] {
        let (_d, store) = empty_store();
        let p = pull(&pa, &store, std::slice::from_ref(&vk))
            .await
            .expect("either key");
        assert_eq!(p.signed_by.as_deref(), Some(vk.path()));
    }
    let sig = toka_oci::signature::signature_tag(pa.digest().expect("pinned"));
    let link = reg.storage().join(format!(
        "docker/registry/v2/repositories/toka/twice/_manifests/tags/{sig}/current/link"
    ));
    let hex = std::fs::read_to_string(link).expect("sig tag");
    let raw = std::fs::read(reg.blob_path(hex.trim().trim_start_matches("sha256:")))
        .expect("sig manifest");
    let m = toka_oci::artifact::ImageManifest::parse("sig", &raw).expect("parse");
    assert_eq!(m.layers.len(), 2, "one layer per signer");
}

#[tokio::test]
async fn a_tampered_signature_payload_is_refused() {
    need_registry!();
    let reg = Registry::start();
    let keys = tempfile::tempdir().expect("tempdir");
    let (sk, vk) = keypair(keys.path());
    let pinned = push_signed(&reg, "toka/badsig:1", &Tool::new("badsig", 100), &sk).await;
    let payload = toka_oci::signature::payload(&pinned, pinned.digest().expect("pinned"));
    reg.tamper(toka_spec::manifest::Sha256Hex::of(&payload).as_str());
    let (_d, store) = empty_store();
    let e = pull(&pinned, &store, &[vk])
        .await
        .expect_err("tampered payload");
    // A damaged payload cannot verify: it is counted, and refused.
    assert!(matches!(e, OciError::BadSignature { found: 1, .. }), "{e}");
    assert_eq!(files(&store), Vec::<String>::new());
}
