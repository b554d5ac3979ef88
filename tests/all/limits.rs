//! Every limit trips, with a message that names it and its value, exit code
//! 124, and a host that keeps working afterwards.

use crate::harness::{hello_still_works, plugin, toka};
use std::time::{Duration, Instant};

#[track_caller]
fn trips(args: &[&str], message: &str, limit: &str) {
    let run = toka(args).run();
    run.assert_code(124).assert_stderr_has(message);
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = toka(&json_args).run();
    run.assert_code(124);
    let v = run.json();
    assert_eq!(v["error"]["kind"], "limit-exceeded", "{v}");
    assert_eq!(v["error"]["limit"], limit, "{v}");
    hello_still_works();
}

#[test]
fn infinite_loop_ends_at_the_timeout() {
    let start = Instant::now();
    trips(
        &[
            "run",
            &plugin("spin-forever"),
            "--timeout",
            "300ms",
            "--fuel",
            "1000000000000",
        ],
        "timeout of 300ms exceeded",
        "timeout",
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the loop was stopped, not waited out"
    );
}

#[test]
fn infinite_loop_ends_when_fuel_runs_out() {
    trips(
        &["run", &plugin("spin-forever"), "--fuel", "5000000"],
        "fuel limit of 5000000 exceeded",
        "fuel",
    );
}

#[test]
fn blocked_in_a_host_call_ends_at_the_timeout() {
    // A WASI sleep never returns to wasm, so only the outer timer can act.
    trips(
        &["run", &plugin("sleep-forever"), "--timeout", "300ms"],
        "timeout of 300ms exceeded",
        "timeout",
    );
}

#[test]
fn memory_bomb_ends_at_the_memory_limit() {
    trips(
        &["run", &plugin("grow-memory"), "--memory", "32MiB"],
        "memory limit of 32MiB exceeded",
        "memory",
    );
    let v = toka(["run", &plugin("grow-memory"), "--memory", "32MiB", "--json"])
        .run()
        .json();
    let peak = v["usage"]["peak_memory"].as_u64().expect("peak");
    assert!(peak <= 32 << 20 && peak > 16 << 20, "peak {peak}");
}

#[test]
fn unbounded_recursion_ends_at_the_stack_limit() {
    trips(
        &["run", &plugin("recurse-forever")],
        "wasm stack limit of 1MiB exceeded",
        "stack",
    );
    trips(
        &[
            "run",
            &plugin("recurse-forever"),
            "--max-wasm-stack",
            "256KiB",
        ],
        "wasm stack limit of 256KiB exceeded",
        "stack",
    );
}

#[test]
fn output_flood_is_capped() {
    let run = toka(["run", &plugin("flood-stdout"), "--max-output", "10KiB"]).run();
    run.assert_code(124)
        .assert_stderr_has("output limit of 10KiB exceeded");
    assert_eq!(run.stdout.len(), 10 * 1024, "exactly the limit got through");
    trips(
        &["run", &plugin("flood-stdout"), "--max-output", "10KiB"],
        "output limit of 10KiB exceeded",
        "output",
    );
}

#[test]
fn tool_calls_hit_the_same_limits() {
    let misbehave = plugin("misbehave");
    let call = |what: &str| format!(r#"{{"do":"{what}"}}"#);
    trips(
        &[
            "run",
            &misbehave,
            "--input",
            &call("spin"),
            "--timeout",
            "300ms",
        ],
        "timeout of 300ms exceeded",
        "timeout",
    );
    trips(
        &[
            "run",
            &misbehave,
            "--input",
            &call("spin"),
            "--fuel",
            "10000000",
        ],
        "fuel limit of 10000000 exceeded",
        "fuel",
    );
    trips(
        &[
            "run",
            &misbehave,
            "--input",
            &call("grow"),
            "--memory",
            "16MiB",
        ],
        "memory limit of 16MiB exceeded",
        "memory",
    );
    trips(
        &["run", &misbehave, "--input", &call("recurse")],
        "wasm stack limit",
        "stack",
    );
    trips(
        &[
            "run",
            &misbehave,
            "--input",
            &call("flood"),
            "--max-output",
            "4KiB",
        ],
        "output limit of 4KiB exceeded",
        "output",
    );
    // A result larger than the output limit is refused too.
    trips(
        &[
            "run",
            &misbehave,
            "--input",
            &call("big-result"),
            "--max-output",
            "1MiB",
        ],
        "output limit of 1MiB exceeded",
        "output",
    );
}

#[test]
fn manifest_limits_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("spinner.yaml");
    std::fs::write(
        &manifest,
        format!(
            "metadata: {{ name: spinner, version: 1.0.0, description: spins }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security:\n    sandbox: {{ timeout: 200ms, fuel: 100000000000 }}\n",
            plugin("misbehave")
        ),
    )
    .expect("write");
    let m = manifest.display().to_string();
    toka(["run", &m, "--input", r#"{"do":"spin"}"#])
        .run()
        .assert_code(124)
        .assert_stderr_has("timeout of 200ms exceeded");
    toka([
        "run",
        &m,
        "--input",
        r#"{"do":"spin"}"#,
        "--timeout",
        "400ms",
    ])
    .run()
    .assert_code(124)
    .assert_stderr_has("timeout of 400ms exceeded");
}

#[test]
fn trap_exits_134() {
    let run = toka(["run", &plugin("trap")]).run();
    run.assert_code(134)
        .assert_stderr_has("trapped")
        .assert_stderr_has("unreachable");
    toka(["run", &plugin("misbehave"), "--input", r#"{"do":"trap"}"#])
        .run()
        .assert_code(134);
    hello_still_works();
}
