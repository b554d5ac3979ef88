//! Plain WASI programs run as under `wasmtime run`: arguments, environment,
//! stdin, stdout, stderr and exit codes, for a `wasi:cli/command` component
//! and for a preview1 core module.

use crate::harness::{plugin, toka};

#[track_caller]
fn echo(program: &str, exit: &str, expected_code: i32) {
    let run = toka([
        "run",
        program,
        "--env",
        "GREETING=hi there",
        "--",
        "one",
        "two words",
        "--cat",
        "--stderr=to stderr",
        &format!("--exit={exit}"),
    ])
    .stdin("from stdin\n")
    .env("NOT_PASSED", "x")
    .run();
    run.assert_code(expected_code)
        .assert_stderr_has("to stderr");
    let expected = format!(
        "arg[0]={program}\narg[1]=one\narg[2]=two words\narg[3]=--cat\narg[4]=--stderr=to stderr\n\
         arg[5]=--exit={exit}\nenv GREETING=hi there\nstdin=from stdin\n\n"
    );
    assert_eq!(run.stdout, expected);
}

#[test]
fn command_component_gets_args_env_stdin_and_exit_status() {
    let p = plugin("cli-echo");
    echo(&p, "0", 0);
    // wasi:cli@0.2 `exit` carries success or failure only, so any non-zero
    // code is 1, exactly as under `wasmtime run`.
    echo(&p, "3", 1);
}

#[test]
fn preview1_module_gets_args_env_stdin_and_exact_exit_code() {
    let p = plugin("cli-echo.p1");
    echo(&p, "0", 0);
    echo(&p, "4", 4);
    echo(&p, "125", 125);
    // WASI preview1 allows exit codes below 126 only; wasmtime traps on the
    // rest, and so does Toka.
    toka(["run", &p, "--", "--exit=200"])
        .run()
        .assert_code(134)
        .assert_stderr_has("exit with invalid exit status");
}

#[test]
fn json_envelope_captures_a_command() {
    let run = toka([
        "run",
        &plugin("cli-echo.p1"),
        "--json",
        "--",
        "x",
        "--exit=7",
    ])
    .run();
    run.assert_code(7);
    let v = run.json();
    assert_eq!(v["exit_code"], 7);
    assert_eq!(v["kind"], "preview1");
    assert!(v["stdout"].as_str().expect("stdout").contains("arg[1]=x"));
}

#[test]
fn arguments_go_to_commands_and_json_to_tools() {
    toka(["run", &plugin("cli-echo"), "--param", "a=1"])
        .run()
        .assert_code(125)
        .assert_stderr_has("--input and --param are for tools");
    toka(["run", "hello", "--", "arg"])
        .run()
        .assert_code(125)
        .assert_stderr_has("not arguments");
}
