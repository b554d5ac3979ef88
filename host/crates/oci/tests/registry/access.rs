//! Reaching a registry: absent tags, a registry that is down, and
//! credentials from a docker config.json, which are sent and never shown.

use crate::*;
use base64::Engine;

#[tokio::test]
async fn a_missing_tag_is_not_found_naming_the_reference() {
    need_registry!();
    let reg = Registry::start();
    push(&reg, "toka/here:1", &Tool::new("here", 10)).await;
    let (_d, store) = empty_store();
    for missing in ["toka/here:2", "toka/nothere:1"] {
        let r = reference(&reg, missing);
        let e = pull(&r, &store, &[]).await.expect_err("missing");
        match &e {
            OciError::NotFound { reference } => assert_eq!(reference, &r.to_string()),
            other => panic!("{missing}: expected not found, got {other}"),
        }
        assert!(e.to_string().contains(&r.to_string()), "{e}");
        assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::NotFound);
    }
}

#[tokio::test]
async fn a_registry_that_is_down_is_unreachable() {
    need_registry!();
    let reg = Registry::start();
    let r = reference(&reg, "toka/down:1");
    reg.stop();
    let (_d, store) = empty_store();
    let e = pull(&r, &store, &[]).await.expect_err("down");
    match &e {
        OciError::Unreachable { registry, .. } => assert_eq!(registry, &reg.host()),
        other => panic!("expected unreachable, got {other}"),
    }
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::Unavailable);
    let tool = Tool::new("down", 10);
    let e = toka_oci::push(&r, &tool.yaml, &tool.wasm, None, &RegistryConfig::new())
        .await
        .expect_err("push, down");
    assert!(matches!(e, OciError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn docker_config_credentials_are_sent_and_never_shown() {
    need_registry!();
    if !Registry::auth_available() {
        eprintln!(
            "skipped: {} is not installed (apt-get install apache2-utils)",
            toka_testkit::registry::HTPASSWD
        );
        return;
    }
    const PASSWORD: &str = "s3cret-Pa55";
    let reg = Registry::start_with_auth("toka", PASSWORD);
    let tool = Tool::new("private", 100);
    let r = reference(&reg, "toka/private:1");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |name: &str, user: &str, pass: &str| {
        let path = dir.path().join(format!("{name}.json"));
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
        )
        .expect("write config");
        RegistryConfig::new().docker_config(&path).expect("config")
    };
    let right = config("right", "toka", PASSWORD);
    let wrong = config("wrong", "toka", "wrong-Pa55");
    let secrets = [
        PASSWORD.to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("toka:{PASSWORD}")),
        "wrong-Pa55".to_string(),
    ];
    let mut messages = Vec::new();

    // Anonymous: refused, with a hint on how to give credentials.
    let e = toka_oci::push(&r, &tool.yaml, &tool.wasm, None, &RegistryConfig::new())
        .await
        .expect_err("anonymous push");
    assert!(matches!(e, OciError::Unauthorized { .. }), "{}", chain(&e));
    assert!(e.to_string().contains("TOKA_REGISTRY_USER"), "{e}");
    messages.push(chain(&e));

    // Wrong password: refused, naming where the credentials came from.
    let e = toka_oci::push(&r, &tool.yaml, &tool.wasm, None, &wrong)
        .await
        .expect_err("wrong password");
    assert!(matches!(e, OciError::Unauthorized { .. }), "{}", chain(&e));
    assert!(e.to_string().contains("wrong.json"), "{e}");
    messages.push(chain(&e));
    messages.push(format!("{e:?}"));

    // The right ones: push and pull work.
    let pinned = toka_oci::push(&r, &tool.yaml, &tool.wasm, None, &right)
        .await
        .expect("push with credentials");
    let (_d, store) = empty_store();
    let p = toka_oci::pull(&r, &store, &right, &[], &|_: Progress| {})
        .await
        .expect("pull with credentials");
    assert_eq!(p.reference, pinned);
    assert_eq!(std::fs::read(&p.wasm).expect("wasm"), tool.wasm_bytes);

    // Pulls that fail for other reasons, with credentials in play.
    let (_d2, store2) = empty_store();
    for (cfg, r) in [
        (&wrong, r.clone()),
        (&RegistryConfig::new(), r.clone()),
        (&right, reference(&reg, "toka/private:missing")),
    ] {
        let e = toka_oci::pull(&r, &store2, cfg, &[], &|_: Progress| {})
            .await
            .expect_err("refused");
        messages.push(chain(&e));
        messages.push(format!("{e:?}"));
    }
    messages.push(format!("{right:?}"));
    for m in &messages {
        for s in &secrets {
            assert!(!m.contains(s.as_str()), "a credential leaked into: {m}");
        }
    }
}

#[tokio::test]
async fn registries_off_loopback_get_https_unless_listed_as_insecure() {
    need_registry!();
    let reg = Registry::start();
    push(&reg, "toka/tls:1", &Tool::new("tls", 10)).await;
    // On Linux, connecting to 0.0.0.0 reaches the loopback registry, but the
    // name is not a loopback one: HTTPS by default, and this registry
    // answers a TLS hello in plain HTTP.
    let host = format!("0.0.0.0:{}", reg.addr().port());
    let r: Reference = format!("oci://{host}/toka/tls:1").parse().expect("ref");
    let (_d, store) = empty_store();
    let e = pull(&r, &store, &[])
        .await
        .expect_err("TLS to a plain-HTTP registry");
    assert!(matches!(e, OciError::Unreachable { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("--insecure-registry {host}")),
        "{e}"
    );
    let insecure = RegistryConfig::new().insecure_registry(&host);
    toka_oci::pull(&r, &store, &insecure, &[], &|_: Progress| {})
        .await
        .expect("listed as insecure");
}
