//! Bad input of every kind gets a clear error and the documented exit code.

use crate::harness::{hello_still_works, repo, toka};

#[test]
fn malformed_wasm() {
    let f = repo().join("tests/fixtures/malformed.wasm");
    toka(["run", &f.display().to_string()])
        .run()
        .assert_code(125)
        .assert_stderr_has("malformed.wasm: invalid WebAssembly");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, "just some text").expect("write");
    toka(["run", &text.display().to_string()])
        .run()
        .assert_code(125)
        .assert_stderr_has("not WebAssembly");
    hello_still_works();
}

#[test]
fn component_of_the_wrong_world() {
    toka(["run", "tests/fixtures/wrong-world.wat"])
        .run()
        .assert_code(125)
        .assert_stderr_has("of no world Toka runs: it exports [frobnicate]")
        .assert_stderr_has("toka:plugin/handler@0.1.0");
    toka(["run", "tests/fixtures/incomplete-tool.wat"])
        .run()
        .assert_code(125)
        .assert_stderr_has("does not have export `describe`");
}

#[test]
fn unknown_import() {
    toka(["run", "tests/fixtures/unknown-import.wat"])
        .run()
        .assert_code(125)
        .assert_stderr_has("acme:secrets/vault@1.0.0")
        .assert_stderr_has("the host provides wasi:*@0.2.x and toka:plugin/{host,tools,llm}@0.1.0");
}

#[test]
fn missing_things() {
    toka(["run", "no-such-tool"])
        .run()
        .assert_code(127)
        .assert_stderr_has("no tool named `no-such-tool`")
        .assert_stderr_has(
            "available: date-validator, file-reader, hello, setup-toka-testing, summarize-file, text-stats, text-stats-c, text-stats-js, text-stats-py, validate-env",
        );
    toka(["run", "missing.wasm"])
        .run()
        .assert_code(127)
        .assert_stderr_has("missing.wasm: no such file");
    toka(["run", "hello", "--manifests", "/nonexistent"])
        .run()
        .assert_code(125)
        .assert_stderr_has("cannot read the manifests directory /nonexistent");
}

#[test]
fn bad_manifest_names_file_and_field() {
    toka(["run", "tests/ui/invalid/bad-size.yaml"])
        .run()
        .assert_code(125)
        .assert_stderr_has(
            "bad-size.yaml:11: spec.security.sandbox.memory_limit: `64 megs` is not a size",
        );
}

#[test]
fn a_broken_manifest_does_not_hide_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo().join("tests/ui/invalid/bad-yaml.yaml"),
        dir.path().join("broken.yaml"),
    )
    .expect("copy");
    let hello = std::fs::read_to_string(repo().join("manifests/hello.yaml")).expect("read");
    let hello = hello.replace(
        "../plugins/build/hello.wasm",
        &crate::harness::plugin("hello"),
    );
    std::fs::write(dir.path().join("hello.yaml"), hello).expect("write");
    toka(["run", "hello", "--param", "name=Ada"])
        .env("TOKA_MANIFESTS", &dir.path().display().to_string())
        .run()
        .assert_code(0);
    toka(["run", "broken"])
        .env("TOKA_MANIFESTS", &dir.path().display().to_string())
        .run()
        .assert_code(125)
        .assert_stderr_has("broken.yaml");
}

#[test]
fn bad_flags_and_input() {
    for (args, needle) in [
        (
            vec!["run", "hello", "--memory", "lots"],
            "`lots` is not a size",
        ),
        (vec!["run", "hello", "--timeout", "5"], "has no unit"),
        (
            vec!["run", "hello", "--grant", "root"],
            "`root` is not a capability",
        ),
        (
            vec!["run", "hello", "--allow-net", "example.com"],
            "not a host pattern",
        ),
        (
            vec!["run", "hello", "--input", "{nope"],
            "--input is not valid JSON",
        ),
        (
            vec!["run", "hello", "--param", "noequals"],
            "write KEY=VALUE",
        ),
        (
            vec!["run", "hello", "--input", "{}"],
            "lacks the required property `name`",
        ),
        (
            vec!["run", "hello", "--input", r#"{"name": 3}"#],
            "must be of type string",
        ),
        (
            vec!["run", "hello", "--dir", "/nonexistent-dir"],
            "--dir /nonexistent-dir: not an existing directory",
        ),
        (
            vec!["run", "hello", "--bogus"],
            "unexpected argument '--bogus'",
        ),
    ] {
        toka(&args).run().assert_code(125).assert_stderr_has(needle);
    }
}

#[test]
fn help_documents_exit_codes_and_defaults() {
    let run = toka(["run", "--help"]).run();
    run.assert_code(0)
        .assert_stdout_has("124    a limit was exceeded")
        .assert_stdout_has("Default limits")
        .assert_stdout_has("--allow-net");
    toka(["--help"])
        .run()
        .assert_code(0)
        .assert_stdout_has("Exit codes:");
}

#[test]
fn a_file_that_is_not_a_manifest_is_never_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:hunter2:/root:/bin/bash\n").expect("write");
    let run = toka(["run", &secret.display().to_string()]).run();
    run.assert_code(125)
        .assert_stderr_has("expected a mapping of fields");
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(!run.stderr.contains("RawManifest"), "{}", run.stderr);
}

#[test]
fn a_path_that_is_not_a_file_says_what_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let fifo = d.join("pipe.yaml");
    let c = std::ffi::CString::new(fifo.display().to_string()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(d.join("b.yaml"), d.join("a.yaml")).expect("ln");
    std::os::unix::fs::symlink(d.join("a.yaml"), d.join("b.yaml")).expect("ln");
    for (path, what) in [
        (d.to_path_buf(), "is a directory"),
        (fifo, "is a named pipe"),
        (d.join("a.yaml"), "is a symlink loop"),
    ] {
        toka(["run", &path.display().to_string()])
            .run()
            .assert_code(125)
            .assert_stderr_has(what);
    }
    toka(["run", &d.join("missing.yaml").display().to_string()])
        .run()
        .assert_code(127)
        .assert_stderr_has("no such file");
}

#[test]
fn no_arguments_is_a_usage_error_and_completions_and_man_are_generated() {
    toka(Vec::<String>::new())
        .run()
        .assert_code(125)
        .assert_stderr_has("Usage: toka-host <COMMAND>");
    toka(["--help"]).run().assert_code(0);
    for shell in ["bash", "zsh", "fish"] {
        toka(["completions", shell])
            .run()
            .assert_code(0)
            .assert_stdout_has("toka-host");
    }
    toka(["man"])
        .run()
        .assert_code(0)
        .assert_stdout_has(".TH toka-host");
}
