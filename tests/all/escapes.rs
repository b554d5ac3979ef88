//! Every way out of the sandbox fails. Each test first shows that the host
//! itself can reach the target, so the denial is the sandbox's doing.

use crate::harness::{hello_still_works, plugin, secret_outside, toka};

/// A granted directory `data` beside a secret file, with symlinks inside
/// `data` that point at the secret.
fn layout() -> (tempfile::TempDir, String, String) {
    let (dir, secret, content) = secret_outside();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("inside.txt"), "inside").expect("write");
    std::os::unix::fs::symlink(&secret, data.join("abs-link")).expect("symlink");
    std::os::unix::fs::symlink("../secret.txt", data.join("rel-link")).expect("symlink");
    let grant = format!("{}::/data", data.display());
    (dir, grant, content)
}

#[test]
fn reads_outside_the_grant_fail() {
    let (dir, grant, secret) = layout();
    let probe = plugin("fs-probe");
    let inside = toka([
        "run",
        &probe,
        "--ro-dir",
        &grant,
        "--",
        "read",
        "/data/inside.txt",
    ])
    .run();
    inside.assert_code(0).assert_stdout_has("ok: inside");
    let outside = dir.path().join("secret.txt").display().to_string();
    for path in [
        outside.as_str(),
        "/data/../secret.txt",
        "/data/abs-link",
        "/data/rel-link",
        "/etc/passwd",
        "/proc/self/environ",
    ] {
        let run = toka(["run", &probe, "--ro-dir", &grant, "--", "read", path]).run();
        run.assert_code(1).assert_stdout_has("denied");
        assert!(!run.stdout.contains(&secret), "{path} leaked the secret");
    }
    hello_still_works();
}

#[test]
fn read_only_means_read_only() {
    let (dir, grant, _) = layout();
    let rw = dir.path().join("rw");
    std::fs::create_dir(&rw).expect("mkdir");
    std::fs::write(rw.join("mine.txt"), "mine").expect("write");
    let rw_grant = format!("{}::/rw", rw.display());
    let probe = plugin("fs-probe");
    let cases: &[&[&str]] = &[
        &["write", "/data/inside.txt"],
        &["append", "/data/inside.txt"],
        &["truncate", "/data/inside.txt"],
        &["create", "/data/new.txt"],
        &["mkdir", "/data/newdir"],
        &["remove", "/data/inside.txt"],
        &["rename", "/data/inside.txt", "/data/moved.txt"],
        &["rename", "/rw/mine.txt", "/data/moved.txt"],
        &["rename", "/data/inside.txt", "/rw/stolen.txt"],
        &["hardlink", "/data/inside.txt", "/data/hl.txt"],
        &["hardlink", "/rw/mine.txt", "/data/hl.txt"],
    ];
    for case in cases {
        let mut args = vec![
            "run",
            probe.as_str(),
            "--ro-dir",
            &grant,
            "--dir",
            &rw_grant,
            "--",
        ];
        args.extend_from_slice(case);
        toka(&args).run().assert_code(1).assert_stdout_has("denied");
    }
    let data = dir.path().join("data");
    assert_eq!(
        std::fs::read_to_string(data.join("inside.txt")).expect("read"),
        "inside"
    );
    let mut names: Vec<_> = std::fs::read_dir(&data)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    assert_eq!(names, ["abs-link", "inside.txt", "rel-link"]);
    assert_eq!(
        std::fs::read_to_string(rw.join("mine.txt")).expect("read"),
        "mine"
    );
    // The writable grant is writable.
    toka([
        "run",
        &probe,
        "--dir",
        &rw_grant,
        "--",
        "write",
        "/rw/new.txt",
    ])
    .run()
    .assert_code(0);
    assert!(rw.join("new.txt").is_file());
    hello_still_works();
}

#[test]
fn file_reader_cannot_be_talked_out_of_its_directory() {
    let (dir, _, secret) = layout();
    let data = dir.path().join("data");
    let manifest = dir.path().join("reader.yaml");
    std::fs::write(
        &manifest,
        format!(
            "metadata: {{ name: reader, version: 1.0.0, description: reads }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 capabilities: {{ required: [filesystem-read] }}\n\
             \x20 security:\n    sandbox: {{ readonly_paths: ['{}::/data'] }}\n",
            plugin("file-reader"),
            data.display()
        ),
    )
    .expect("write");
    let m = manifest.display().to_string();
    toka([
        "run",
        &m,
        "--grant",
        "filesystem-read",
        "--param",
        "path=inside.txt",
    ])
    .run()
    .assert_code(0)
    .assert_stdout_has("inside");
    let outside = dir.path().join("secret.txt").display().to_string();
    for path in [
        "../secret.txt",
        outside.as_str(),
        "abs-link",
        "rel-link",
        "../../../../etc/passwd",
    ] {
        let run = toka([
            "run",
            &m,
            "--grant",
            "filesystem-read",
            "--param",
            &format!("path={path}"),
        ])
        .run();
        run.assert_code(1);
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "{path} leaked"
        );
    }
    hello_still_works();
}

#[test]
fn environment_holds_only_what_was_passed() {
    let run = toka([
        "run",
        &plugin("print-env"),
        "--env",
        "GIVEN=yes",
        "--env",
        "FROM_HOST",
    ])
    .env("TOKA_TEST_SECRET", "hunter2")
    .env("FROM_HOST", "passed-through")
    .run();
    run.assert_code(0);
    let vars: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("dir "))
        .collect();
    assert_eq!(
        vars,
        ["GIVEN=yes", "FROM_HOST=passed-through"],
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("hunter2"));
    // No directories either.
    assert!(run.stdout.contains("dir /: error"), "{}", run.stdout);

    // A tool gets only the names its manifest lists.
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("envy.yaml");
    std::fs::write(
        &manifest,
        format!(
            "metadata: {{ name: envy, version: 1.0.0, description: prints env }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security:\n    sandbox: {{ env: [TOKA_TEST_LISTED] }}\n",
            plugin("misbehave")
        ),
    )
    .expect("write");
    let run = toka([
        "run",
        &manifest.display().to_string(),
        "--input",
        r#"{"do":"env"}"#,
        "--json",
    ])
    .env("TOKA_TEST_LISTED", "listed")
    .env("TOKA_TEST_SECRET", "hunter2")
    .run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(
        v["output"]["env"],
        serde_json::json!([["TOKA_TEST_LISTED", "listed"]])
    );
    hello_still_works();
}
