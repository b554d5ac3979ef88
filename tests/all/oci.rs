//! Tools from an OCI registry through the CLI and `serve`, against Debian's
//! `docker-registry` on loopback: push, pull and run by tag and digest from
//! an empty store, signatures, tampering, and a local manifest that names
//! its code by digest.

use crate::harness::{Run, plugin, toka};
use crate::serve::Server;
use std::path::Path;
use std::time::{Duration, Instant};
use toka_spec::manifest::Sha256Hex;
use toka_testkit::Registry;

/// A fresh registry on a free loopback port (the project's scripts install
/// the package, so a missing one fails the test rather than skipping it).
fn registry() -> Registry {
    assert!(
        Registry::available(),
        "docker-registry is not installed: run scripts/install-registry.sh"
    );
    Registry::start()
}

fn push(manifest: &str, reference: &str, extra: &[&str]) -> String {
    let mut args = vec!["push", manifest, reference];
    args.extend_from_slice(extra);
    let run = toka(args).env("COSIGN_PASSWORD", "pw").run();
    run.assert_code(0);
    let pinned = run.stdout.trim().to_string();
    assert!(pinned.contains("@sha256:"), "push printed {pinned:?}");
    pinned
}

/// `toka-host ARGS` with its own (empty) cache and content store.
fn fresh(args: &[&str], cache: &Path) -> Run {
    toka(args).cache(Some(cache.to_path_buf())).run()
}

#[test]
fn push_pull_and_run_by_tag_and_by_digest_from_an_empty_store() {
    let reg = registry();
    let tag = reg.reference("tools/hello:1");
    let pinned = push("manifests/hello.yaml", &tag, &[]);
    assert!(pinned.starts_with(&reg.reference("tools/hello@sha256:")));

    for reference in [&tag, &pinned] {
        let cache = tempfile::tempdir().expect("cache");
        let run = fresh(&["run", reference, "--param", "name=Ada"], cache.path());
        run.assert_code(0).assert_stdout_has("Hello, Ada!");
        // What was pulled is in the store, content-addressed.
        assert!(cache.path().join("oci/blobs/sha256").read_dir().is_ok());
    }

    let cache = tempfile::tempdir().expect("cache");
    let pulled = fresh(&["pull", &tag], cache.path());
    pulled.assert_code(0);
    assert_eq!(pulled.stdout.trim(), pinned);
    // Pushing the same files again gives the same digest.
    assert_eq!(push("manifests/hello.yaml", &tag, &[]), pinned);
    // With the registry gone, the digest still runs from the store; the tag
    // (which may have moved) does not.
    reg.stop();
    fresh(&["run", &pinned, "--param", "name=Bo"], cache.path())
        .assert_code(0)
        .assert_stdout_has("Hello, Bo!");
    fresh(&["run", &tag], cache.path())
        .assert_code(125)
        .assert_stderr_has("cannot reach registry");
}

#[test]
fn the_pulled_manifest_decides_capabilities_and_the_operator_still_grants() {
    let reg = registry();
    let pinned = push(
        "manifests/file-reader.yaml",
        &reg.reference("tools/file-reader:1"),
        &[],
    );
    let cache = tempfile::tempdir().expect("cache");
    let work = tempfile::tempdir().expect("work");
    std::fs::create_dir(work.path().join("data")).expect("mkdir");
    std::fs::write(work.path().join("data/notes.txt"), "pulled and sandboxed").expect("write");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", pinned.as_str(), "--param", "path=notes.txt"];
        args.extend_from_slice(extra);
        toka(args)
            .cwd(work.path())
            .cache(Some(cache.path().to_path_buf()))
            .run()
    };
    run(&[])
        .assert_code(126)
        .assert_stderr_has("filesystem-read");
    // A bare grant reaches only the manifest's own directory, which for a
    // pulled manifest is the store: the operator names the tree it may read.
    run(&["--grant", "filesystem-read"])
        .assert_code(126)
        .assert_stderr_has("--grant filesystem-read=");
    let data = work.path().join("data").canonicalize().expect("data");
    run(&["--grant", &format!("filesystem-read={}", data.display())])
        .assert_code(0)
        .assert_stdout_has("pulled and sandboxed");
}

#[test]
fn signed_pushes_verify_and_unsigned_or_wrongly_signed_ones_are_refused() {
    let reg = registry();
    let keys = tempfile::tempdir().expect("keys");
    let other = tempfile::tempdir().expect("other keys");
    for dir in [keys.path(), other.path()] {
        toka(["signing", "keygen", "--out", &dir.display().to_string()])
            .env("COSIGN_PASSWORD", "pw")
            .run()
            .assert_code(0);
    }
    let private = keys.path().join("cosign.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&private).expect("key").permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the private key is readable by others");
    let public = keys.path().join("cosign.pub").display().to_string();
    let wrong = other.path().join("cosign.pub").display().to_string();

    let signed = push(
        "manifests/hello.yaml",
        &reg.reference("tools/hello:signed"),
        &["--sign-key", &private.display().to_string()],
    );
    let unsigned = push(
        "manifests/date-validator.yaml",
        &reg.reference("tools/date:1"),
        &[],
    );

    let cache = tempfile::tempdir().expect("cache");
    fresh(
        &[
            "run",
            &signed,
            "--verify-key",
            &public,
            "--param",
            "name=Ada",
        ],
        cache.path(),
    )
    .assert_code(0)
    .assert_stdout_has("Hello, Ada!");
    // A directory of trusted keys works like --verify-key.
    fresh(
        &[
            "pull",
            &signed,
            "--trusted-keys",
            &keys.path().display().to_string(),
        ],
        cache.path(),
    )
    .assert_code(0);

    let cache = tempfile::tempdir().expect("cache");
    fresh(&["run", &unsigned, "--verify-key", &public], cache.path())
        .assert_code(126)
        .assert_stderr_has("is not signed")
        .assert_stderr_has(&unsigned);
    fresh(&["run", &signed, "--verify-key", &wrong], cache.path())
        .assert_code(126)
        .assert_stderr_has(&wrong);
    // Nothing refused was kept: without a key it is pulled afresh.
    fresh(&["pull", &unsigned], cache.path()).assert_code(0);

    // A wrong password names the key file, never the password.
    let run = toka([
        "push",
        "manifests/hello.yaml",
        &reg.reference("tools/hello:x"),
        "--sign-key",
        &private.display().to_string(),
    ])
    .env("COSIGN_PASSWORD", "not-the-password")
    .run();
    run.assert_code(125)
        .assert_stderr_has("cosign.key")
        .assert_stderr_has("wrong password");
    assert!(!run.stderr.contains("not-the-password"));
}

#[test]
fn a_blob_tampered_in_the_registry_is_refused_with_a_digest_error() {
    let reg = registry();
    let pinned = push("manifests/hello.yaml", &reg.reference("tools/hello:1"), &[]);
    let wasm = std::fs::read(plugin("hello")).expect("hello.wasm");
    reg.tamper(&Sha256Hex::of(&wasm).to_string());
    let cache = tempfile::tempdir().expect("cache");
    let run = fresh(&["run", &pinned], cache.path());
    run.assert_code(125)
        .assert_stderr_has("does not match its digest")
        .assert_stderr_has(&pinned);
    // Nothing of the tampered layer reached the store.
    let blobs = cache.path().join("oci/blobs/sha256");
    let kept: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !kept
            .iter()
            .any(|n| n.to_string_lossy() == Sha256Hex::of(&wasm).to_string()),
        "the tampered blob is in the store: {kept:?}"
    );
}

#[test]
fn a_manifest_needs_a_digest_to_name_registry_code() {
    let dir = tempfile::tempdir().expect("dir");
    let m = dir.path().join("t.yaml");
    std::fs::write(
        &m,
        "metadata: { name: t, version: 1.0.0, description: d }\n\
         spec:\n  executable: { type: component, path: \"oci://127.0.0.1:5000/tools/t:1\" }\n",
    )
    .expect("write");
    toka(["run", &m.display().to_string()])
        .run()
        .assert_code(125)
        .assert_stderr_has("names no digest");
}

/// `serve` loads a local manifest whose code is in the registry, and swaps
/// it when the manifest changes to another digest.
#[test]
fn serve_resolves_oci_paths_and_swaps_when_the_manifest_changes() {
    let reg = registry();
    let hello = push("manifests/hello.yaml", &reg.reference("tools/hello:1"), &[]);
    let date = push(
        "manifests/date-validator.yaml",
        &reg.reference("tools/date:1"),
        &[],
    );
    let dir = tempfile::tempdir().expect("dir");
    let write = |version: &str, code: &str| {
        let tmp = dir.path().join(".remote.yaml.tmp");
        std::fs::write(
            &tmp,
            format!(
                "metadata: {{ name: remote, version: {version}, description: from a registry }}\n\
                 spec:\n  executable: {{ type: component, path: \"{code}\" }}\n"
            ),
        )
        .expect("write");
        std::fs::rename(&tmp, dir.path().join("remote.yaml")).expect("rename");
    };
    write("1.0.0", &hello);
    let server = Server::start_with_env(dir.path(), &["--reload-interval", "100ms"], &[]);
    let (code, body) = server.json("POST", "/v1/tools/remote/invoke", Some(r#"{"name":"Ada"}"#));
    assert_eq!(code, 200, "{body}\n{}", server.log());
    assert_eq!(body["output"]["greeting"], "Hello, Ada!");

    write("2.0.0", &date);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = server.json(
            "POST",
            "/v1/tools/remote/invoke",
            Some(r#"{"date":"2026-12-01"}"#),
        );
        if code == 200 && body["output"].to_string().contains("2026-12-01") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not swapped: {code} {body}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
