//! The round trip: what is pushed is what is pulled, by tag or by digest,
//! and a pinned digest already in the store needs no registry.

use crate::*;

#[tokio::test]
async fn push_then_pull_by_tag_and_by_digest() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("echo", 1000);
    let pinned = push(&reg, "toka/echo:1.0.0", &tool).await;
    assert_eq!(pinned.tag(), None);
    assert_eq!(pinned.repository(), "toka/echo");

    let (_d, store) = empty_store();
    let by_tag = pull(&reference(&reg, "toka/echo:1.0.0"), &store, &[])
        .await
        .expect("pull by tag");
    assert_eq!(by_tag.reference, pinned);
    assert_eq!(&by_tag.manifest_digest, pinned.digest().expect("digest"));
    assert!(!by_tag.from_store);
    assert_eq!(std::fs::read(&by_tag.wasm).expect("wasm"), tool.wasm_bytes);
    assert_eq!(
        std::fs::read(&by_tag.manifest_yaml).expect("yaml"),
        tool.yaml
    );
    assert_eq!(
        by_tag.wasm_digest,
        toka_spec::manifest::Sha256Hex::of(&tool.wasm_bytes)
    );

    let (_d2, store2) = empty_store();
    let by_digest = pull(&pinned, &store2, &[]).await.expect("pull by digest");
    assert_eq!(by_digest.reference, pinned);
    assert!(!by_digest.from_store);
    assert_eq!(
        std::fs::read(&by_digest.wasm).expect("wasm"),
        tool.wasm_bytes
    );
    assert_eq!(
        std::fs::read(&by_digest.manifest_yaml).expect("yaml"),
        tool.yaml
    );
    assert!(
        files(&store2).iter().all(|f| !f.starts_with("tmp/")),
        "{:?}",
        files(&store2)
    );
}

#[tokio::test]
async fn pushing_the_same_tool_twice_gives_the_same_digest() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("same", 100);
    let a = push(&reg, "toka/same:1", &tool).await;
    let b = push(&reg, "toka/same:2", &tool).await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_second_pull_of_a_digest_uses_the_store_without_the_registry() {
    need_registry!();
    let reg = Registry::start();
    let tool = Tool::new("cached", 1000);
    let pinned = push(&reg, "toka/cached:1", &tool).await;
    let (_d, store) = empty_store();
    let first = pull(&pinned, &store, &[]).await.expect("first pull");
    reg.stop();
    let second = pull(&pinned, &store, &[])
        .await
        .expect("second pull, registry stopped");
    assert!(second.from_store);
    assert_eq!(
        (second.wasm.clone(), second.manifest_yaml.clone()),
        (first.wasm, first.manifest_yaml)
    );
    assert_eq!(std::fs::read(&second.wasm).expect("wasm"), tool.wasm_bytes);
    // A tag always asks the registry (tags move).
    let e = pull(&reference(&reg, "toka/cached:1"), &store, &[])
        .await
        .expect_err("tag, registry stopped");
    assert!(matches!(e, OciError::Unreachable { .. }), "{e}");
}
