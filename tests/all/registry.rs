//! `toka-host tools list|show|validate|compile|call`: the registry of a manifests
//! directory, where one broken manifest never hides the others.

use crate::harness::{plugin, repo, toka};

/// A manifests directory with `hello`, a broken manifest and a duplicate.
fn mixed_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let hello = std::fs::read_to_string(repo().join("manifests/hello.yaml")).expect("read");
    let hello = hello.replace("../plugins/build/hello.wasm", &plugin("hello"));
    std::fs::write(dir.path().join("hello.yaml"), &hello).expect("write");
    std::fs::write(dir.path().join("hello-again.yaml"), &hello).expect("write");
    std::fs::copy(
        repo().join("tests/ui/invalid/bad-size.yaml"),
        dir.path().join("broken.yaml"),
    )
    .expect("copy");
    dir
}

#[test]
fn list_shows_every_tool_and_every_broken_manifest() {
    let run = toka(["tools", "list"]).run();
    run.assert_code(0);
    for name in [
        "hello",
        "file-reader",
        "date-validator",
        "validate-env",
        "setup-toka-testing",
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(name) && l.ends_with("ok")),
            "{name}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("filesystem-write,process-execution"));

    let dir = mixed_dir();
    let d = dir.path().display().to_string();
    let run = toka(["tools", "list", "--manifests", &d]).run();
    run.assert_code(0)
        .assert_stdout_has("(broken.yaml)")
        .assert_stdout_has("is not a size")
        .assert_stdout_has("already the name of the tool in");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("hello ") && l.ends_with("ok")),
        "{}",
        run.stdout
    );
    let v: serde_json::Value = serde_json::from_str(
        &toka(["tools", "list", "--manifests", &d, "--json"])
            .run()
            .stdout,
    )
    .expect("json");
    let statuses: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "ok").count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == "error").count(), 2);
}

#[test]
fn validate_gates_on_any_error() {
    toka(["tools", "validate"])
        .run()
        .assert_code(0)
        .assert_stdout_has("10 manifests valid");
    let dir = mixed_dir();
    toka(["tools", "validate", &dir.path().display().to_string()])
        .run()
        .assert_code(125)
        .assert_stdout_has("ok     hello")
        .assert_stderr_has("2 of 3 manifests are invalid");
    toka(["tools", "validate", "tests/ui/invalid/zero-fuel.yaml"])
        .run()
        .assert_code(125)
        .assert_stdout_has("spec.security.sandbox.fuel")
        .assert_stderr_has("zero-fuel.yaml is invalid");
    toka(["tools", "validate", "manifests/hello.yaml"])
        .run()
        .assert_code(0);
}

/// `validate` loads as `serve` does: bytes that are not wasm, or a command
/// where a tool is declared, fail the gate; `--manifests` and `--json` work
/// as for the other subcommands.
#[test]
fn validate_compiles_and_checks_the_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let noise: Vec<u8> = (0..10_240u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("noise.wasm"), noise).expect("write");
    for (name, code) in [
        ("noise", dir.path().join("noise.wasm").display().to_string()),
        ("echo", plugin("cli-echo")),
    ] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "metadata: {{ name: {name}, version: 1.0.0, description: d }}\n\
                 spec:\n  executable: {{ type: component, path: {code} }}\n"
            ),
        )
        .expect("write");
    }
    let d = dir.path().display().to_string();
    toka(["tools", "validate", "--manifests", &d])
        .run()
        .assert_code(125)
        .assert_stdout_has("not WebAssembly")
        .assert_stdout_has("wasi:cli/command")
        .assert_stderr_has("2 of 2 manifests are invalid");
    let run = toka(["tools", "validate", "--manifests", &d, "--json"]).run();
    run.assert_code(125);
    let rows = run.json();
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["ok"] == false && r["error"].is_string())
    );
    let ok = toka(["tools", "validate", "--json"]).run();
    ok.assert_code(0);
    assert!(
        ok.json()
            .as_array()
            .expect("array")
            .iter()
            .all(|r| r["ok"] == true)
    );
}

#[test]
fn show_resolves_the_manifest_schema_and_cache_state() {
    let cache = tempfile::tempdir().expect("tempdir");
    let c = cache.path().join("c");
    let show = || {
        let run = toka(["tools", "show", "hello"])
            .cache(Some(c.clone()))
            .run();
        run.assert_code(0);
        serde_json::from_str::<serde_json::Value>(&run.stdout).expect("json")
    };
    let v = show();
    assert_eq!(v["input_schema"]["required"][0], "name");
    assert!(
        v["tool"]["executable"]["path"]
            .as_str()
            .expect("path")
            .starts_with('/')
    );
    // The words of `run --json`'s usage.cache.
    assert_eq!(v["cache"]["state"], "miss");
    toka(["run", "hello", "--param", "name=x"])
        .cache(Some(c.clone()))
        .run()
        .assert_code(0);
    assert_eq!(show()["cache"]["state"], "hit");
    toka(["tools", "show", "nope"])
        .run()
        .assert_code(127)
        .assert_stderr_has("available: date-validator");
}

#[test]
fn call_goes_through_the_registry() {
    toka(["tools", "call", "hello", "--param", "name=Registry"])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, Registry!");
    let dir = mixed_dir();
    let d = dir.path().display().to_string();
    toka(["tools", "call", "broken", "--manifests", &d])
        .run()
        .assert_code(125)
        .assert_stderr_has("is not a size");
    toka([
        "tools",
        "call",
        "hello",
        "--manifests",
        &d,
        "--param",
        "name=Ada",
    ])
    .run()
    .assert_code(0)
    .assert_stdout_has("Hello, Ada!");
    toka(["tools", "call", "file-reader", "--param", "path=notes.txt"])
        .run()
        .assert_code(126);
}

/// `tools compile` fills the cache ahead of time, so the next `run` loads
/// instead of compiling; a broken manifest fails the command without
/// stopping the others; a name that is no tool is "not found".
#[test]
fn compile_fills_the_cache_ahead_of_the_first_run() {
    let dir = mixed_dir();
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = Some(cache.path().join("cache"));
    let d = dir.path().display().to_string();
    toka(["tools", "compile", &d])
        .cache(cache_dir.clone())
        .run()
        .assert_code(125)
        .assert_stdout_has("compiled  hello in ")
        .assert_stdout_has("error     ")
        .assert_stderr_has("2 of 3 manifests could not be compiled");

    let hello = dir.path().join("hello.yaml").display().to_string();
    let run = toka(["run", &hello, "--param", "name=Ada", "--json"])
        .cache(cache_dir.clone())
        .run();
    run.assert_code(0);
    assert_eq!(
        run.json()["compile"]["cache"]["state"],
        "hit",
        "{}",
        run.stdout
    );

    let run = toka(["tools", "compile", "hello", "--manifests", &d, "--json"])
        .cache(cache_dir.clone())
        .run();
    run.assert_code(0);
    let rows = run.json();
    assert_eq!(rows[0]["name"], "hello", "{rows}");
    assert_eq!(rows[0]["ok"], true, "{rows}");
    assert_eq!(rows[0]["cache"], "hit", "{rows}");

    toka(["tools", "compile", "no-such-tool", "--manifests", &d])
        .cache(cache_dir)
        .run()
        .assert_code(127)
        .assert_stderr_has("no tool named `no-such-tool`");
    toka(["tools", "compile", "--no-cache", &d])
        .cache(None)
        .run()
        .assert_code(125)
        .assert_stderr_has("nowhere to compile to");
}
