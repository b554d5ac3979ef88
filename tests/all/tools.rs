//! The bundled tools, run the way a user runs them.

use crate::harness::{hello_still_works, toka};

#[test]
fn hello_greets_by_name() {
    hello_still_works();
    toka(["run", "hello", "--input", r#"{"name": "Grace"}"#])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, Grace!")
        .assert_stderr_has("[hello] info: greeting Grace");
}

#[test]
fn hello_by_manifest_path_and_by_wasm_path() {
    toka(["run", "manifests/hello.yaml", "--param", "name=Ada"])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, Ada!");
    toka(["run", "plugins/build/hello.wasm", "--param", "name=Ada"])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, Ada!");
}

/// A bare `.wasm` has no manifest, but its own `describe()` gives the
/// input schema: `--param` values are typed by it and the input checked
/// against it, as through a manifest.
#[test]
fn a_bare_wasm_is_typed_and_checked_by_its_own_describe() {
    // `name` is a string in hello's schema: 42 stays the text "42".
    toka(["run", "plugins/build/hello.wasm", "--param", "name=42"])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, 42!");
    toka(["run", "plugins/build/text-stats.wasm", "--param", "text=42"])
        .run()
        .assert_code(0)
        .assert_stdout_has(r#""words":1"#);
    // The required property, checked before the guest runs.
    let r = toka(["run", "plugins/build/hello.wasm", "--param", "nam=Ada"]).run();
    r.assert_code(125)
        .assert_stderr_has("lacks the required property `name`");
    assert!(!r.stderr.contains("info: greeting"), "{}", r.stderr);
}

#[test]
fn input_from_file_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("in.json");
    std::fs::write(&f, r#"{"name":"File"}"#).expect("write");
    toka(["run", "hello", "--input", &format!("@{}", f.display())])
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, File!");
    toka(["run", "hello", "--input", "-"])
        .stdin(r#"{"name":"Stdin"}"#)
        .run()
        .assert_code(0)
        .assert_stdout_has("Hello, Stdin!");
}

#[test]
fn json_envelope_reports_output_logs_and_usage() {
    let run = toka(["run", "hello", "--param", "name=Ada", "--json"]).run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["output"]["greeting"], "Hello, Ada!");
    assert_eq!(v["kind"], "tool");
    assert_eq!(v["logs"][0]["message"], "greeting Ada");
    let usage = &v["usage"];
    assert!(usage["fuel_consumed"].as_u64().expect("fuel") > 0, "{v}");
    assert!(
        usage["peak_memory"].as_u64().expect("memory") >= 65536,
        "{v}"
    );
    assert!(usage["wall_time_ms"].as_f64().expect("time") > 0.0, "{v}");
    assert_eq!(v["digest"].as_str().map(str::len), Some(64));
}

#[test]
fn tool_error_exits_1_with_its_message() {
    toka([
        "run",
        "plugins/build/misbehave.wasm",
        "--input",
        r#"{"do":"fail"}"#,
    ])
    .run()
    .assert_code(1)
    .assert_stderr_has("asked to fail");
    hello_still_works();
}

#[test]
fn date_validator_normalises_and_rejects() {
    let run = toka([
        "run",
        "date-validator",
        "--param",
        "date=26.11.2026",
        "--json",
    ])
    .run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["output"]["normalized"], "2026-11-26");
    assert_eq!(v["output"]["weekday"], "Thursday");
    let v = toka([
        "run",
        "date-validator",
        "--param",
        "date=February 29, 2026",
        "--json",
    ])
    .run()
    .json();
    assert_eq!(v["output"]["valid"], false);
    assert!(
        v["output"]["reason"]
            .as_str()
            .expect("reason")
            .contains("28 days")
    );
    let v = toka([
        "run",
        "date-validator",
        "--param",
        "date=2024-02-29",
        "--json",
    ])
    .run()
    .json();
    assert_eq!(v["output"]["valid"], true);
    assert_eq!(v["output"]["leap_year"], true);
}

#[test]
fn file_reader_reads_its_granted_directory() {
    toka([
        "run",
        "file-reader",
        "--grant",
        "filesystem-read",
        "--param",
        "path=notes.txt",
    ])
    .run()
    .assert_code(0)
    .assert_stdout_has("Toka runs tools in sandboxes.");
}

#[test]
fn ungranted_capability_is_refused_before_running() {
    let run = toka(["run", "file-reader", "--param", "path=notes.txt", "--json"]).run();
    run.assert_code(126);
    let v = run.json();
    assert_eq!(v["error"]["kind"], "denied");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("filesystem-read") && msg.contains("--grant filesystem-read"),
        "{msg}"
    );
    // Nothing ran: no usage, no output.
    assert!(v["usage"].is_null(), "{v}");
}
