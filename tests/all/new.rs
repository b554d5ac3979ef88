//! `toka-host new`: a plugin folder, in each language, that builds with its
//! own script in a clean folder and runs right away.

use crate::harness::{repo, toka};
use std::path::Path;
use std::process::Command;

/// Makes NAME in a clean folder, builds it with its own `build.sh` (the
/// project's toolchains passed as the script documents), runs it.
fn new_builds_and_runs(kind: &str, name: &str, lang: &str, expect: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    toka(["new", kind, name, "--lang", lang, "--dir", &d])
        .run()
        .assert_code(0)
        .assert_stdout_has(&format!("created {d}/{name}"));
    let folder = dir.path().join(name);
    let tc = repo().join(".toolchains");
    let out = Command::new(folder.join("build.sh"))
        .current_dir(&folder)
        .env("COMPONENTIZE_PY", tc.join("python/bin/componentize-py"))
        .env("JCO", tc.join("node/node_modules/.bin/jco"))
        .env("WIT_BINDGEN", tc.join("cargo/bin/wit-bindgen"))
        .env("WASM_TOOLS", tc.join("cargo/bin/wasm-tools"))
        // Shares the plugins' compiled dependencies.
        .env("CARGO_TARGET_DIR", repo().join("target"))
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{name}/build.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = folder.join(format!("{name}.yaml"));
    toka([
        "run",
        &manifest.display().to_string(),
        "--input",
        &format!("@{}", folder.join("input.json").display()),
    ])
    .run()
    .assert_code(0)
    .assert_stdout_has(expect);
    toka(["tools", "validate", &manifest.display().to_string()])
        .run()
        .assert_code(0);
}

#[test]
fn a_rust_tool() {
    new_builds_and_runs("tool", "measure-rs", "rust", "\"length\":43");
}

#[test]
fn a_rust_workflow() {
    new_builds_and_runs("workflow", "count-words", "rust", "\"words\":8");
}

#[test]
fn a_python_tool() {
    new_builds_and_runs("tool", "measure-py", "python", "\"length\":43");
}

#[test]
fn a_javascript_tool() {
    new_builds_and_runs("tool", "measure-js", "js", "\"length\":43");
}

#[test]
fn a_c_tool() {
    new_builds_and_runs("tool", "measure-c", "c", "\"length\":43");
}

#[test]
fn bad_names_and_existing_folders_are_refused_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    toka(["new", "tool", "Bad_Name", "--dir", &d])
        .run()
        .assert_code(125)
        .assert_stderr_has("NAME:");
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").expect("write");
    toka(["new", "tool", "taken", "--dir", &d])
        .run()
        .assert_code(125)
        .assert_stderr_has("already exists");
    assert_eq!(
        std::fs::read_to_string(Path::new(&d).join("taken/keep.txt")).expect("read"),
        "mine"
    );
    toka(["new", "workflow", "wf", "--lang", "python", "--dir", &d])
        .run()
        .assert_code(125)
        .assert_stderr_has("workflows are written in Rust");
}
