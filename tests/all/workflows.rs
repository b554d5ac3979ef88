//! Workflows end to end: the example `summarize-file` against a fake
//! provider on loopback speaking both real APIs, the key kept out of the
//! sandbox, tool-call grants, nested budgets, cycles, failing providers,
//! `orchestrate` with 50 agents, and `/v1/agents` in `serve`.

use crate::harness::{Run, plugin, repo, toka};
use crate::serve::Server;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use toka_testkit::fake_llm::{self, FakeLlm, Mode};

const KEY: &str = "sk-test-K3YM4RK-0123456789";
const MARKER: &str = "K3YM4RK";

/// Runs `toka-host ARGS` with `env` added.
fn run_env(args: &[&str], env: &[(String, String)]) -> Run {
    let mut t = toka(args);
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.run()
}

fn grants() -> Vec<&'static str> {
    vec![
        "--grant",
        "tool-call",
        "--grant",
        "llm",
        "--grant",
        "filesystem-read",
    ]
}

/// A manifests directory with `misbehave`, `hello` and workflows made of
/// `wf-script`, one per `(name, tools, sandbox extra)`.
fn dir_with(workflows: &[(&str, &[&str], &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("misbehave.yaml"),
        format!(
            "metadata: {{ name: misbehave, version: 1.0.0, description: misbehaves }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n\
             \x20 security:\n    sandbox: {{ timeout: 60s, fuel: 1000000000000 }}\n",
            plugin("misbehave")
        ),
    )
    .expect("misbehave");
    std::fs::write(
        d.join("hello.yaml"),
        format!(
            "metadata: {{ name: hello, version: 1.0.0, description: greets }}\n\
             spec:\n  executable: {{ type: component, path: {} }}\n",
            plugin("hello")
        ),
    )
    .expect("hello");
    for (name, tools, extra) in workflows {
        std::fs::write(
            d.join(format!("{name}.yaml")),
            format!(
                "metadata: {{ name: {name}, version: 1.0.0, description: scripted workflow }}\n\
                 spec:\n  executable: {{ type: workflow, path: {} }}\n\
                 \x20 capabilities: {{ required: [tool-call, llm], optional: [filesystem-read] }}\n\
                 \x20 security:\n    sandbox:\n      tools: [{}]\n{extra}",
                plugin("wf-script"),
                tools.join(", ")
            ),
        )
        .expect("workflow");
    }
    dir
}

fn script(
    dir: &Path,
    workflow: &str,
    steps: Value,
    extra: &[&str],
    env: &[(String, String)],
) -> Run {
    let manifests = dir.display().to_string();
    let input = json!({ "steps": steps }).to_string();
    let mut args = vec![
        "run",
        workflow,
        "--manifests",
        &manifests,
        "--input",
        &input,
        "--grant",
        "tool-call",
        "--grant",
        "llm",
    ];
    args.extend_from_slice(extra);
    run_env(&args, env)
}

fn check_summary(out: &Value) {
    assert_eq!(out["summary"], fake_llm::CONTENT, "{out}");
    assert_eq!(out["path"], "notes.txt");
    assert_eq!(out["date"]["normalized"], "2026-11-26");
    assert_eq!(out["date"]["weekday"], "Thursday");
    assert_eq!(out["tokens"]["input"], fake_llm::INPUT_TOKENS);
}

#[test]
fn summarize_file_through_an_openai_compatible_provider() {
    let llm = FakeLlm::start(Mode::Ok);
    let audit = tempfile::NamedTempFile::new().expect("audit");
    let audit_path = audit.path().display().to_string();
    let mut args = vec![
        "run",
        "summarize-file",
        "--param",
        "path=notes.txt",
        "--param",
        "date=26.11.2026",
    ];
    args.extend(grants());
    args.extend(["--audit-log", &audit_path]);
    let r = run_env(&args, &llm.env("openai", KEY));
    r.assert_code(0);
    check_summary(&r.json());
    // Progress at each step, on stderr when not a terminal.
    r.assert_stderr_has("[summarize-file]  10% reading notes.txt")
        .assert_stderr_has("35% checking the date")
        .assert_stderr_has("60% asking the model")
        .assert_stderr_has("[summarize-file] completed in");

    let seen = llm.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(req.body["model"], "gpt-4o-mini");
    assert_eq!(req.body["max_tokens"], 300);
    assert_eq!(req.body["messages"][0]["role"], "system");
    let prompt = req.body["messages"][1]["content"].as_str().expect("prompt");
    let notes = std::fs::read_to_string(repo().join("manifests/data/notes.txt")).expect("notes");
    assert!(
        prompt.contains(notes.trim()),
        "the file reached the model: {prompt}"
    );
    assert!(prompt.contains("2026-11-26 (Thursday)"), "{prompt}");

    let log = std::fs::read_to_string(audit.path()).expect("audit log");
    assert!(log.contains(r#""event":"llm-request""#), "{log}");
    assert!(log.contains(r#""event":"llm-response""#), "{log}");
    assert!(log.contains(fake_llm::CONTENT), "the response is recorded");
    assert!(
        !log.contains(MARKER),
        "the key is never in the audit log:\n{log}"
    );
}

#[test]
fn summarize_file_through_anthropic_with_json_progress() {
    let llm = FakeLlm::start(Mode::Ok);
    let mut args = vec![
        "run",
        "summarize-file",
        "--json",
        "--param",
        "path=notes.txt",
        "--param",
        "date=2026-11-26",
    ];
    args.extend(grants());
    let r = run_env(&args, &llm.env("anthropic", KEY));
    r.assert_code(0);
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per event"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"spawned"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"completed"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| **k == "progress").count() >= 4,
        "{kinds:?}"
    );
    let done = events.last().expect("last");
    check_summary(&done["output"]);
    assert_eq!(
        done["usage"]["llm_tokens"],
        fake_llm::INPUT_TOKENS + fake_llm::OUTPUT_TOKENS
    );

    let seen = llm.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some(KEY));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.body["system"], "You write short, factual summaries.");
    assert_eq!(
        req.body["messages"][0]["role"], "user",
        "system text is not a message"
    );
    assert_eq!(req.body["max_tokens"], 300);
}

#[test]
fn a_hostile_workflow_never_finds_the_key() {
    let llm = FakeLlm::start(Mode::Ok);
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("a.txt"), "nothing here").expect("data file");
    let extra = format!(
        "      readonly_paths: [{}::/data]\n      env: [HOME, PATH]\n",
        data.path().display()
    );
    let dir = dir_with(&[("hunter", &["hello"], &extra)]);
    // Everything the provider's key could come from is set in the host.
    let mut env = llm.env("openai", KEY);
    env.push(("OPENAI_API_KEY".into(), KEY.into()));
    env.push(("ANTHROPIC_API_KEY".into(), KEY.into()));
    let hex: String = MARKER
        .bytes()
        .map(|b| format!("{:02x}", b ^ 0x5A))
        .collect();
    let steps = json!([{ "llm": "hello" }, { "hunt": hex }]);
    let reach = format!("filesystem-read={}", data.path().display());
    let r = script(
        dir.path(),
        "hunter",
        steps.clone(),
        &["--grant", &reach, "--env", "EXTRA=1", "--dir", "/tmp::/tmp"],
        &env,
    );
    r.assert_code(0);
    let out = r.json();
    let hunt = &out["results"][1]["ok"];
    assert_eq!(
        out["results"][0]["ok"]["content"],
        fake_llm::CONTENT,
        "{out}"
    );
    assert_eq!(hunt["found_in_env"], false, "{hunt}");
    assert_eq!(hunt["found_in_files"], false, "{hunt}");
    assert_eq!(hunt["found_in_memory"], false, "{hunt}");
    assert!(hunt["memory_bytes"].as_u64().expect("size") > 65536);
    assert!(
        hunt["opened"]
            .as_array()
            .expect("opened")
            .iter()
            .any(|p| p == "/data/a.txt"),
        "the hunt did look at the files it was given: {hunt}"
    );
    let names: Vec<&str> = hunt["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("KEY") || n.starts_with("TOKA")),
        "{names:?}"
    );
    // Control: the hunt does find a secret that is there.
    let planted = format!("PLANTED={KEY}");
    let r = script(dir.path(), "hunter", steps, &["--env", &planted], &env);
    r.assert_code(0);
    let hunt = &r.json()["results"][1]["ok"];
    assert_eq!(hunt["found_in_env"], true, "{hunt}");
    assert_eq!(hunt["found_in_memory"], true, "{hunt}");
    // The host did send it, to the provider only.
    assert_eq!(
        llm.seen()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    // Asking for it explicitly is refused, by flag or by manifest.
    for (flag, extra_sandbox) in [("--env", ""), ("", "      env: [OPENAI_API_KEY]\n")] {
        let dir = dir_with(&[("greedy", &["hello"], extra_sandbox)]);
        let extra: Vec<&str> = if flag.is_empty() {
            vec![]
        } else {
            vec![flag, "OPENAI_API_KEY"]
        };
        script(dir.path(), "greedy", json!([]), &extra, &env)
            .assert_code(125)
            .assert_stderr_has("refusing to pass OPENAI_API_KEY into the sandbox");
    }
}

#[test]
fn a_workflow_calls_only_the_tools_it_lists_and_is_granted() {
    let dir = dir_with(&[("caller", &["hello"], "")]);
    let ok = json!([{ "call": "hello", "input": { "name": "Ada" } }]);
    let r = script(dir.path(), "caller", ok.clone(), &[], &[]);
    r.assert_code(0);
    assert_eq!(r.json()["results"][0]["ok"]["greeting"], "Hello, Ada!");

    let r = script(
        dir.path(),
        "caller",
        json!([{ "call": "misbehave", "input": { "do": "ok" } }]),
        &[],
        &[],
    );
    r.assert_code(1).assert_stderr_has(
        "`caller` may not call `misbehave`: it is not in spec.security.sandbox.tools of `caller`'s manifest (which lists: hello)",
    );

    // Without the operator's grant nothing runs.
    let manifests = dir.path().display().to_string();
    toka(["run", "caller", "--manifests", &manifests, "--grant", "llm"])
        .run()
        .assert_code(126)
        .assert_stderr_has("--grant tool-call");

    // A callee's own requirements are checked against the operator's grants,
    // not inherited from the caller.
    let dir = dir_with(&[("reader", &["file-reader"], "")]);
    std::fs::copy(
        repo().join("manifests/file-reader.yaml"),
        dir.path().join("file-reader.yaml"),
    )
    .expect("copy");
    std::fs::create_dir(dir.path().join("data")).expect("data");
    std::fs::write(dir.path().join("data/x.txt"), "x").expect("x");
    let text = std::fs::read_to_string(dir.path().join("file-reader.yaml")).expect("read");
    std::fs::write(
        dir.path().join("file-reader.yaml"),
        text.replace("../plugins/build/file-reader.wasm", &plugin("file-reader")),
    )
    .expect("write");
    let steps = json!([{ "call": "file-reader", "input": { "path": "x.txt" } }]);
    script(dir.path(), "reader", steps.clone(), &[], &[])
        .assert_code(1)
        .assert_stderr_has("requires capability `filesystem-read`");
    let r = script(
        dir.path(),
        "reader",
        steps,
        &["--grant", "filesystem-read"],
        &[],
    );
    r.assert_code(0);
    assert_eq!(r.json()["results"][0]["ok"]["content"], "x");

    // A subprocess tool is called through the shim, in its own sandbox.
    let dir = dir_with(&[("checker", &["validate-env"], "")]);
    let text = std::fs::read_to_string(repo().join("manifests/validate-env.yaml")).expect("read");
    std::fs::write(
        dir.path().join("validate-env.yaml"),
        text.replace(
            "../scripts/tools/",
            &format!("{}/scripts/tools/", repo().display()),
        ),
    )
    .expect("write");
    let steps = json!([{ "call": "validate-env", "input": { "require": "sh" } }]);
    let r = script(dir.path(), "checker", steps, &[], &[]);
    r.assert_code(0);
    assert_eq!(r.json()["results"][0]["ok"]["ok"], true, "{}", r.stdout);
}

#[test]
fn a_nested_call_cannot_outspend_the_workflow() {
    let dir = dir_with(&[(
        "boss",
        &["misbehave"],
        "      timeout: 1500ms\n      fuel: 40000000000\n",
    )]);
    let spin = json!([{ "call": "misbehave", "input": { "do": "spin" } }]);

    // The callee may run for 60 s; the workflow's 1.5 s end it.
    let started = Instant::now();
    let r = script(dir.path(), "boss", spin.clone(), &["--json"], &[]);
    let took = started.elapsed();
    r.assert_code(124);
    let last: Value = serde_json::from_str(r.stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["event"], "failed");
    assert_eq!(last["error"]["limit"], "timeout", "{last}");
    assert_eq!(
        last["error"]["value"], 1500,
        "the workflow's limit, not the callee's: {last}"
    );
    assert!(
        took < Duration::from_secs(30),
        "ended at the workflow's deadline, took {took:?}"
    );

    // Fuel: the callee may burn 1e12; the workflow has 1e8 left for it.
    let r = script(
        dir.path(),
        "boss",
        spin,
        &["--json", "--fuel", "100000000", "--timeout", "30s"],
        &[],
    );
    r.assert_code(124);
    let last: Value = serde_json::from_str(r.stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(last["error"]["limit"], "fuel", "{last}");
    assert_eq!(last["error"]["value"], 100_000_000u64, "{last}");
    assert!(
        last["usage"]["fuel_consumed"].as_u64().expect("fuel") >= 99_000_000,
        "{last}"
    );

    // A callee's own, smaller limit is the callee's error, which the
    // workflow sees and may handle.
    let r = script(
        dir.path(),
        "boss",
        json!([{ "call": "misbehave", "input": { "do": "grow" } }, { "progress": 1.0 }]),
        &[],
        &[],
    );
    r.assert_code(1).assert_stderr_has("memory limit");
}

#[test]
fn a_call_cycle_is_refused() {
    let dir = dir_with(&[("ping", &["pong"], ""), ("pong", &["ping"], "")]);
    let steps = json!([{ "call": "pong", "input": { "steps": [{ "call": "ping", "input": { "steps": [] } }] } }]);
    script(dir.path(), "ping", steps, &[], &[])
        .assert_code(1)
        .assert_stderr_has("call cycle refused: ping → pong → ping");
    // Calling itself is a cycle too.
    let dir = dir_with(&[("narcissus", &["narcissus"], "")]);
    script(
        dir.path(),
        "narcissus",
        json!([{ "call": "narcissus", "input": {} }]),
        &[],
        &[],
    )
    .assert_code(1)
    .assert_stderr_has("call cycle refused: narcissus → narcissus");
}

#[test]
fn failing_providers_give_clear_errors() {
    let dir = dir_with(&[("asker", &["hello"], "")]);
    let ask = json!([{ "llm": "hi" }]);
    let fast = |llm: &FakeLlm, provider: &str| {
        let mut env = llm.env(provider, KEY);
        env.push(("TOKA_LLM_RETRIES".into(), "2".into()));
        env.push(("TOKA_LLM_TIMEOUT".into(), "700ms".into()));
        env
    };

    // (what the provider does, API, exit code, requests it sees, message)
    let cases: [(Mode, &str, i32, usize, &str); 7] = [
        // 500 twice, then fine: retried.
        (Mode::FailFirst(500, 2), "openai", 0, 3, ""),
        // 429 with Retry-After: retried.
        (Mode::FailFirst(429, 1), "anthropic", 0, 2, ""),
        // Always 503: gives up, says so.
        (
            Mode::FailFirst(503, 100),
            "openai",
            1,
            3,
            "/chat/completions answered 503 after 3 attempt(s)",
        ),
        // A 400 is not retried.
        (
            Mode::FailFirst(400, 100),
            "openai",
            1,
            1,
            "answered 400 after 1 attempt(s)",
        ),
        // Never answers: each attempt times out.
        (
            Mode::Hang,
            "anthropic",
            1,
            3,
            "did not answer within 700ms (3 attempt(s))",
        ),
        (
            Mode::Garbage,
            "openai",
            1,
            1,
            "answered with a body that is not a Chat Completions response",
        ),
        // A flood: the host stops reading at 16 MiB.
        (
            Mode::Huge,
            "openai",
            1,
            1,
            "answered with more than 16777216 bytes",
        ),
    ];
    for (mode, provider, code, requests, message) in cases {
        let llm = FakeLlm::start(mode);
        let r = script(dir.path(), "asker", ask.clone(), &[], &fast(&llm, provider));
        r.assert_code(code);
        assert_eq!(llm.seen().len(), requests, "{provider}: {}", r.stderr);
        if code != 0 {
            r.assert_stderr_has(&format!("the {provider} provider at {}", llm.base_url))
                .assert_stderr_has(message);
        }
    }
    // Nobody listening.
    let env = vec![
        ("TOKA_LLM_PROVIDER".into(), "openai".into()),
        ("TOKA_LLM_API_KEY".into(), KEY.into()),
        ("TOKA_LLM_BASE_URL".into(), "http://127.0.0.1:9/v1".into()),
        ("TOKA_LLM_RETRIES".into(), "0".into()),
    ];
    script(dir.path(), "asker", ask.clone(), &[], &env)
        .assert_code(1)
        .assert_stderr_has(
            "cannot reach the openai provider at http://127.0.0.1:9/v1/chat/completions",
        );
    // No provider at all: a clear error, at once.
    script(dir.path(), "asker", ask.clone(), &[], &[])
        .assert_code(1)
        .assert_stderr_has("no language model is configured on this host");
    // A bad configuration is refused before anything runs.
    script(
        dir.path(),
        "asker",
        ask,
        &[],
        &[("TOKA_LLM_PROVIDER".into(), "gemini".into())],
    )
    .assert_code(125)
    .assert_stderr_has("TOKA_LLM_PROVIDER=gemini");
}

#[test]
fn the_token_budget_covers_the_whole_run() {
    let llm = FakeLlm::start(Mode::Ok);
    let dir = dir_with(&[("chatty", &["hello"], "")]);
    let steps = json!([{ "llm": "one" }, { "llm": "two" }]);
    // 42 + 7 tokens per answer: a budget of 40 allows one request (capped
    // at 40 new tokens), which spends it.
    script(
        dir.path(),
        "chatty",
        steps,
        &["--llm-tokens", "40"],
        &llm.env("openai", KEY),
    )
    .assert_code(1)
    .assert_stderr_has("the run's LLM token budget of 40 is spent");
    assert_eq!(
        llm.seen().len(),
        1,
        "the second request never left the host"
    );
    assert_eq!(
        llm.seen()[0].body["max_tokens"],
        40,
        "max_tokens capped at what is left"
    );
}

#[test]
fn orchestrate_runs_fifty_agents_at_once() {
    let llm = FakeLlm::start(Mode::Ok);
    let file = tempfile::NamedTempFile::new().expect("agents file");
    std::fs::write(
        file.path(),
        "limits: { timeout: 60s }\n\
         agents:\n\
         \x20 - name: notes\n\
         \x20   workflow: summarize-file\n\
         \x20   input: { path: notes.txt, date: 2026-11-26 }\n\
         \x20   replicas: 49\n\
         \x20 - name: missing\n\
         \x20   workflow: summarize-file\n\
         \x20   input: { path: no-such-file.txt }\n",
    )
    .expect("write");
    let path = file.path().display().to_string();
    let mut args = vec!["orchestrate", &path, "--json"];
    args.extend(grants());
    let r = run_env(&args, &llm.env("openai", KEY));
    r.assert_code(1);
    let summary: Value =
        serde_json::from_str(r.stdout.lines().last().expect("summary")).expect("json");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["total"], 50, "all 50 accounted for");
    assert_eq!(summary["completed"], 49);
    assert_eq!(summary["failed"], 1);
    let agents = summary["agents"].as_array().expect("agents");
    let ids: std::collections::BTreeSet<&str> =
        agents.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids.len(), 50, "each agent has its own id");
    let missing = agents
        .iter()
        .find(|a| a["name"] == "missing")
        .expect("missing");
    assert_eq!(missing["state"], "failed");
    assert_eq!(missing["error"]["kind"], "tool-error");
    assert!(
        missing["error"]["message"]
            .as_str()
            .expect("message")
            .contains("no-such-file.txt")
    );
    for a in agents.iter().filter(|a| a["state"] == "completed") {
        assert_eq!(a["output"]["summary"], fake_llm::CONTENT);
    }
    assert_eq!(llm.seen().len(), 49);
    // Every agent's events were shown.
    let spawned = r
        .stdout
        .lines()
        .filter(|l| l.contains(r#""event":"spawned""#))
        .count();
    assert_eq!(spawned, 50);

    // The table, without --json.
    let mut args = vec!["orchestrate", &path];
    args.extend(grants());
    let r = run_env(&args, &llm.env("openai", KEY));
    r.assert_code(1)
        .assert_stdout_has("NAME")
        .assert_stdout_has("notes-49")
        .assert_stdout_has("50 agents: 49 completed, 1 failed");
}

#[test]
fn orchestrate_refuses_a_bad_file_before_starting_anything() {
    let file = tempfile::NamedTempFile::new().expect("agents file");
    let path = file.path().display().to_string();
    for (text, needle) in [
        (
            "agents:\n  - workflow: summarize-file\n    colour: red\n",
            "unknown field `colour`",
        ),
        (
            "agents:\n  - name: x\n",
            "agents[0]: missing field `workflow`",
        ),
        ("agents: []\n", "the list is empty"),
        (
            "agents:\n  - workflow: summarize-file\n  - workflow: nope\n",
            "agent 1 (nope): no tool named `nope`",
        ),
        (
            "agents:\n  - workflow: hello\n",
            "agent 0 (hello): `hello` is not a workflow",
        ),
    ] {
        std::fs::write(file.path(), text).expect("write");
        let mut args = vec!["orchestrate", &path];
        args.extend(grants());
        toka(&args).run().assert_code(125).assert_stderr_has(needle);
    }
}

#[test]
fn serve_starts_follows_and_cancels_agents() {
    let llm = FakeLlm::start(Mode::Ok);
    let dir = dir_with(&[("spinner", &["hello"], "      timeout: 120s\n")]);
    for f in [
        "summarize-file.yaml",
        "file-reader.yaml",
        "date-validator.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("manifests").join(f)).expect("read");
        let text = text
            .replace(
                "../plugins/build/",
                &format!("{}/plugins/build/", repo().display()),
            )
            .replace(
                "./data::/data",
                &format!("{}/manifests/data::/data", repo().display()),
            );
        std::fs::write(dir.path().join(f), text).expect("write");
    }
    let env: Vec<(String, String)> = llm.env("anthropic", KEY);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The data directory is outside this manifests directory: approve it.
    let data = format!(
        "filesystem-read={}",
        repo().join("manifests/data").display()
    );
    let mut flags = grants();
    flags.extend(["--grant", data.as_str()]);
    let s = Server::start_with_env(dir.path(), &flags, &env);

    // Events, as a client of /v1/events sees them.
    let events = std::process::Command::new("curl")
        .args([
            "-sN",
            "--max-time",
            "15",
            &format!("{}/v1/events", s.base()),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl events");
    std::thread::sleep(Duration::from_millis(300));

    let (code, v) = s.json(
        "POST",
        "/v1/agents",
        Some(r#"{"workflow":"summarize-file","input":{"path":"notes.txt","date":"2026-11-26"}}"#),
    );
    assert_eq!(code, 202, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let done = poll(&s, &id, |v| v["state"] != "running");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["progress"], 1.0);
    check_summary(&done["output"]);

    // A tool is not an agent; a workflow is not a tool call.
    assert_eq!(
        s.json("POST", "/v1/agents", Some(r#"{"workflow":"hello"}"#))
            .0,
        400
    );
    assert_eq!(
        s.json("POST", "/v1/agents", Some(r#"{"workflow":"nope"}"#))
            .0,
        404
    );
    assert_eq!(
        s.json(
            "POST",
            "/v1/agents",
            Some(r#"{"workflow":"summarize-file"}"#)
        )
        .0,
        400
    );
    assert_eq!(
        s.json("POST", "/v1/tools/summarize-file/invoke", Some("{}"))
            .0,
        400
    );
    // Fuzz finding 13: a malformed body's error repeated a long unknown key
    // in full, and a value read (`invalid type: string "…"`) with the Rust
    // type expected.
    let secret = "s3cr3t-".repeat(20);
    for (body, says) in [
        (
            format!(r#"{{"workflow":"wf","{}":1}}"#, "k".repeat(5000)),
            "unknown field `",
        ),
        (
            format!(r#"{{"workflow":"wf","limits":"{secret}"}}"#),
            "found a string, expected a mapping of fields (line 1, column",
        ),
    ] {
        let (code, v) = s.json("POST", "/v1/agents", Some(&body));
        assert_eq!(code, 400, "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
        assert!(message.len() < 400, "{message}");
        assert!(
            !message.contains("s3cr3t") && !message.contains("struct"),
            "{message}"
        );
    }

    // Cancel a spinning agent: it stops at once, and so does its CPU use.
    let (code, v) = s.json(
        "POST",
        "/v1/agents",
        Some(r#"{"workflow":"spinner","input":{"steps":[{"progress":0.5},{"spin":true}]}}"#),
    );
    assert_eq!(code, 202, "{v}");
    let spin_id = v["id"].as_str().expect("id").to_string();
    poll(&s, &spin_id, |v| v["progress"] == 0.5);
    let pid = s.child.id();
    let busy = crate::harness::cpu_seconds(pid, Duration::from_millis(500));
    assert!(busy > 0.3, "the agent spins: {busy}s of CPU in 0.5s");
    let (code, v) = s.json("DELETE", &format!("/v1/agents/{spin_id}"), None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "cancelled");
    std::thread::sleep(Duration::from_millis(200));
    let idle = crate::harness::cpu_seconds(pid, Duration::from_millis(1000));
    assert!(
        idle < 0.3,
        "after cancel the sandbox is gone: {idle}s of CPU in 1s"
    );
    assert_eq!(
        s.json("GET", &format!("/v1/agents/{spin_id}"), None).1["state"],
        "cancelled"
    );
    assert_eq!(
        s.json("DELETE", &format!("/v1/agents/{spin_id}"), None).0,
        409
    );
    assert_eq!(s.json("DELETE", "/v1/agents/agent-999", None).0, 404);
    let (code, list) = s.json("GET", "/v1/agents", None);
    assert_eq!((code, list.as_array().map(Vec::len)), (200, Some(2)));

    let out = events.wait_with_output().expect("events");
    let stream = String::from_utf8_lossy(&out.stdout);
    for e in [
        "event: spawned",
        "event: progress",
        "event: completed",
        "event: failed",
    ] {
        assert!(stream.contains(e), "{e} missing from /v1/events:\n{stream}");
    }
    assert!(!stream.contains(MARKER), "no key in events");
}

fn poll(s: &Server, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, v) = s.json("GET", &format!("/v1/agents/{id}"), None);
        assert_eq!(code, 200, "{v}");
        if until(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "agent {id} stuck: {v}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn progress_bars_on_a_terminal() {
    // `script` gives the host a pseudo-terminal, as a user's shell would.
    let llm = FakeLlm::start(Mode::Ok);
    let file = tempfile::NamedTempFile::new().expect("agents file");
    std::fs::write(
        file.path(),
        "agents:\n  - name: notes\n    workflow: summarize-file\n    input: { path: notes.txt }\n    replicas: 3\n",
    )
    .expect("write");
    let cmd = format!(
        "{} orchestrate {} --grant tool-call --grant llm --grant filesystem-read",
        env!("CARGO_BIN_EXE_toka-host"),
        file.path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(repo())
        .envs(llm.env("openai", KEY))
        .env("TOKA_CACHE_DIR", crate::harness::shared_cache())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "notes-1",
        "notes-3",
        "[==============================] 100% done in",
        "3 agents: 3 completed, 0 failed",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not on the terminal:\n{text}"
        );
    }
}

/// One call path: a callee that cannot be loaded fails with the message
/// `run` gives for the same tool, whichever door the call came through.
#[test]
fn a_callee_that_cannot_load_fails_as_it_does_under_run() {
    let dir = dir_with(&[("caller", &["big", "broken"], "")]);
    // Sparse: takes no disk space.
    std::fs::File::create(dir.path().join("big.wasm"))
        .and_then(|f| f.set_len(toka_spec::manifest::MAX_EXECUTABLE_BYTES + 1))
        .expect("sparse file");
    std::fs::write(
        dir.path().join("big.yaml"),
        "metadata: { name: big, version: 1.0.0, description: too big }\n\
         spec: { executable: { type: component, path: big.wasm } }\n",
    )
    .expect("big");
    std::fs::write(
        dir.path().join("broken.yaml"),
        format!(
            "metadata: {{ name: broken, version: 1.0.0, description: not wasm }}\n\
             spec: {{ executable: {{ type: component, path: {} }} }}\n",
            repo().join("tests/fixtures/malformed.wasm").display()
        ),
    )
    .expect("broken");
    let manifests = dir.path().display().to_string();
    for callee in ["big", "broken"] {
        let direct = toka(["run", callee, "--manifests", &manifests]).run();
        direct.assert_code(125);
        let message = direct
            .stderr
            .trim()
            .strip_prefix("error: ")
            .expect("one error line")
            .to_string();
        let steps = json!([{ "call": callee, "input": {} }]);
        script(dir.path(), "caller", steps, &[], &[])
            .assert_code(1)
            .assert_stderr_has(&message);
    }
}

/// A workflow whose wasm is broken says so (`invalid-wasm`) under `run`,
/// `orchestrate` and `POST /v1/agents`, not "not found" or "invalid input".
#[test]
fn a_broken_workflow_wasm_reports_invalid_wasm() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken-wf.yaml"),
        format!(
            "metadata: {{ name: broken-wf, version: 1.0.0, description: not wasm }}\n\
             spec: {{ executable: {{ type: workflow, path: {} }} }}\n",
            repo().join("tests/fixtures/malformed.wasm").display()
        ),
    )
    .expect("manifest");
    let manifests = dir.path().display().to_string();
    let r = toka(["run", "broken-wf", "--manifests", &manifests, "--json"]).run();
    r.assert_code(125);
    assert_eq!(r.json()["error"]["kind"], "invalid-wasm", "{}", r.stdout);

    let agents = dir.path().join("agents.yaml");
    std::fs::write(&agents, "agents:\n  - workflow: broken-wf\n").expect("agents file");
    toka([
        "orchestrate",
        &agents.display().to_string(),
        "--manifests",
        &manifests,
    ])
    .run()
    .assert_code(125)
    .assert_stderr_has("invalid WebAssembly");

    let s = Server::start_with_env(dir.path(), &[], &[]);
    let (code, v) = s.json("POST", "/v1/agents", Some(r#"{"workflow":"broken-wf"}"#));
    assert_eq!(
        (code, v["error"]["kind"].as_str()),
        (500, Some("invalid-wasm")),
        "{v}"
    );
    let (code, _) = s.json("POST", "/v1/agents", Some(r#"{"workflow":"nope"}"#));
    assert_eq!(code, 404);
}
